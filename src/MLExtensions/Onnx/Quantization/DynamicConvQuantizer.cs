using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;
using static MLExtensions.Onnx.QuantizedRange;

namespace MLExtensions.Onnx;

/// <summary>
/// Dynamic int8 Conv: X → DynamicQuantizeLinear → ConvInteger → Cast → × (scale of X × weight scales) [→ + bias].
/// ONNX Runtime's ConvInteger takes uint8 weights with a single zero point, so symmetric per-channel weights are
/// stored as uint8 with the shared zero point 128 (the int8 codes shifted), and the per-channel scales are applied in
/// the float rescale. Asymmetric weights would need one zero point per channel and are quantized per tensor instead.
/// </summary>
internal sealed class DynamicConvQuantizer : IOperatorQuantizer
{
    private static readonly string[] CopiedAttributes = { "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides" };
    private readonly QuantizationOptions _options;

    public DynamicConvQuantizer(QuantizationOptions options) => _options = options;

    public string OperatorType => "Conv";

    public string? TryQuantize(QuantizationGraph graph, NodeProto node)
    {
        var weight = graph.FloatInitializer(node.Input[1], out var dims);
        if (weight is null)
            return "the weight is not a float32 initializer";
        bool perChannel = _options.PerChannel && _options.SymmetricWeights;
        var q = WeightQuantizer.Quantize(weight, dims, perChannel ? 0 : -1, _options.SymmetricWeights, UInt8Min, UInt8Max);
        string stem = node.Input[1];
        string codes = WeightInitializers.UInt8Codes(graph, stem, q, dims);
        string zeroPoint = graph.AddInitializer($"{stem}_zero_point", TensorProto.Types.DataType.Uint8, Array.Empty<long>(), new[] { (byte)q.Parameters[0].ZeroPoint });
        long[] channelShape = WeightInitializers.BroadcastShape(dims.Length, 1, dims[0]);
        string scales = WeightInitializers.Scales(graph, stem, q, perChannel ? channelShape : Array.Empty<long>());

        var x = graph.AddNode("DynamicQuantizeLinear", stem, new[] { node.Input[0] }, outputs: 3);
        var attributes = node.Attribute.Where(a => CopiedAttributes.Contains(a.Name)).Select(a => a.Clone()).ToArray();
        string conv = graph.AddNode("ConvInteger", stem, new[] { x[0], codes, x[2], zeroPoint }, attributes: attributes)[0];
        string asFloat = graph.AddNode("Cast", stem, new[] { conv }, attributes: IntAttr("to", (long)TensorProto.Types.DataType.Float))[0];
        string scale = graph.AddNode("Mul", $"{stem}_scale", new[] { x[1], scales })[0];
        if (node.Input.Count > 2 && node.Input[2].Length > 0)
        {
            string bias = node.Input[2];
            var b = graph.FloatInitializer(bias, out _);
            // The bias is [M]; Conv adds it per output channel, i.e. along axis 1 of the [N, M, ...] output.
            string reshaped = b is not null
                ? graph.AddFloats($"{bias}_channels", channelShape, b)
                : graph.AddNode("Reshape", bias, new[] { bias, graph.AddInitializer($"{bias}_shape", TensorProto.Types.DataType.Int64, new long[] { channelShape.Length },
                    channelShape.Select((d, i) => i == 1 ? -1L : 1L).SelectMany(BitConverter.GetBytes).ToArray()) })[0];
            string scaled = graph.AddNode("Mul", stem, new[] { asFloat, scale })[0];
            graph.AddNodeWithOutputs("Add", stem, new[] { scaled, reshaped }, node.Output);
        }
        else
        {
            graph.AddNodeWithOutputs("Mul", stem, new[] { asFloat, scale }, node.Output);
        }
        graph.RemoveNode(node);
        return null;
    }
}
