using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Batch normalization in evaluation mode (running statistics) as ONNX BatchNormalization, which takes
/// [N, C, ...] and so covers both BatchNorm1d after a linear layer and BatchNorm2d after a convolution.
/// </summary>
internal static class BatchNormExporter
{
    public static string Export(IOnnxGraphWriter writer, BatchNorm norm, string input, string name)
    {
        if (norm.running_mean is null || norm.running_var is null)
            throw new NotSupportedException($"ONNX export of {norm.GetType().Name} '{name}' without running statistics is not supported: evaluation would use batch statistics.");
        long features = norm.num_features;
        using var ones = TorchSharp.torch.ones(features);
        using var zeros = TorchSharp.torch.zeros(features);
        string scale = writer.AddFloats(name + ".weight", norm.weight is null ? ones : (Tensor)norm.weight);
        string bias = writer.AddFloats(name + ".bias", norm.bias is null ? zeros : (Tensor)norm.bias);
        string mean = writer.AddFloats(name + ".running_mean", norm.running_mean);
        string variance = writer.AddFloats(name + ".running_var", norm.running_var);
        return writer.AddNode("BatchNormalization", new[] { input, scale, bias, mean, variance }, name,
            NodeAttribute.Of("epsilon", (float)norm.eps));
    }
}
