using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// LayerNorm over the last dimension: the LayerNormalization operator from opset 17, written out as
/// ReduceMean/Sub/Mul/Sqrt/Div for older opsets (ML.NET's ConvertToOnnx defaults to 12).
/// </summary>
internal static class LayerNormExporter
{
    public static string Export(IOnnxGraphWriter writer, LayerNorm norm, string input, string name)
    {
        if (norm.normalized_shape.Length != 1)
            throw new NotSupportedException($"ONNX export of LayerNorm '{name}' over {norm.normalized_shape.Length} dimensions is not supported (only the last one).");
        long width = norm.normalized_shape[0];
        using var ones = TorchSharp.torch.ones(width);
        using var zeros = TorchSharp.torch.zeros(width);
        string weight = writer.AddFloats(name + ".weight", norm.weight is null ? ones : (TorchSharp.torch.Tensor)norm.weight);
        string bias = writer.AddFloats(name + ".bias", norm.bias is null ? zeros : (TorchSharp.torch.Tensor)norm.bias);
        if (writer.OpsetVersion >= 17)
        {
            return writer.AddNode("LayerNormalization", new[] { input, weight, bias }, name,
                NodeAttribute.Of("axis", -1L), NodeAttribute.Of("epsilon", (float)norm.eps));
        }
        // Opsets before 18 take ReduceMean's axes as an attribute.
        var lastAxis = NodeAttribute.IntList("axes", -1L);
        string mean = writer.AddNode("ReduceMean", new[] { input }, name + ".mean", lastAxis);
        string centred = writer.AddNode("Sub", new[] { input, mean }, name + ".centred");
        string squared = writer.AddNode("Mul", new[] { centred, centred }, name + ".squared");
        string variance = writer.AddNode("ReduceMean", new[] { squared }, name + ".variance", lastAxis);
        string shifted = writer.AddNode("Add", new[] { variance, writer.AddScalar(name + ".eps", (float)norm.eps) }, name + ".variance_eps");
        string deviation = writer.AddNode("Sqrt", new[] { shifted }, name + ".std");
        string normalized = writer.AddNode("Div", new[] { centred, deviation }, name + ".normalized");
        string scaled = writer.AddNode("Mul", new[] { normalized, weight }, name + ".scaled");
        return writer.AddNode("Add", new[] { scaled, bias }, name);
    }
}
