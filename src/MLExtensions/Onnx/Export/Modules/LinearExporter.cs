using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// <c>Linear</c> as MatMul (weight stored transposed, [in, out]) plus Add. MatMul rather than Gemm because Gemm
/// takes only 2-D inputs and the text encoder applies linear layers to [batch, tokens, hidden].
/// </summary>
internal static class LinearExporter
{
    public static string Export(IOnnxGraphWriter writer, Linear linear, string input, string name)
    {
        string product = MatMul(writer, linear, input, name);
        if (linear.bias is null)
            return product;
        string bias = writer.AddFloats(name + ".bias", linear.bias);
        return writer.AddNode("Add", new[] { product, bias }, name);
    }

    /// <summary>The product with the weight alone, for callers that hand the bias to a fused operator.</summary>
    public static string MatMul(IOnnxGraphWriter writer, Linear linear, string input, string name)
    {
        using var transposed = linear.weight!.t();
        string weight = writer.AddFloats(name + ".weight", transposed);
        return writer.AddNode("MatMul", new[] { input, weight }, name + ".matmul");
    }
}
