using TorchSharp;
using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary><c>Conv2d</c> as ONNX Conv. Weight layout [out, in/groups, kh, kw] is the same in both.</summary>
internal static class ConvolutionExporter
{
    public static string Export(IOnnxGraphWriter writer, Conv2d conv, string input, string name)
    {
        if (conv.padding_mode != PaddingModes.Zeros)
            throw new NotSupportedException($"ONNX export of Conv2d '{name}' with padding mode {conv.padding_mode} is not supported (only zero padding).");
        var attributes = new List<NodeAttribute>
        {
            NodeAttribute.IntList("kernel_shape", conv.kernel_size),
            NodeAttribute.IntList("strides", conv.stride ?? new long[] { 1, 1 }),
            NodeAttribute.IntList("dilations", conv.dilation ?? new long[] { 1, 1 }),
            NodeAttribute.Of("group", conv.groups),
        };
        if (conv.padding_type == Padding.Same)
        {
            // PyTorch's 'same' puts the odd extra padding at the end, which is ONNX's SAME_UPPER.
            attributes.Add(NodeAttribute.Of("auto_pad", "SAME_UPPER"));
        }
        else
        {
            var pad = conv.padding_type == Padding.Valid || conv.padding is null ? new long[] { 0, 0 } : conv.padding;
            attributes.Add(NodeAttribute.IntList("pads", pad[0], pad[1], pad[0], pad[1]));
        }
        var inputs = new List<string> { input, writer.AddFloats(name + ".weight", conv.weight!) };
        if (conv.bias is not null)
            inputs.Add(writer.AddFloats(name + ".bias", conv.bias));
        return writer.AddNode("Conv", inputs, name, attributes.ToArray());
    }
}
