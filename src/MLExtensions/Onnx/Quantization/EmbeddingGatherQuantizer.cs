using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;
using static MLExtensions.Onnx.QuantizedRange;

namespace MLExtensions.Onnx;

/// <summary>
/// Embedding lookups (Gather of rows from a float table): the table is stored as symmetric int8 with one scale per
/// row, the rows are gathered as int8 and only they are turned back into floats (Gather → Cast → × gathered row
/// scales). Dequantizing the whole table first would cost a full pass over it on every call. Used by both int8 modes;
/// the embedding output stays float, so nothing downstream changes.
/// </summary>
internal sealed class EmbeddingGatherQuantizer : IOperatorQuantizer
{
    private readonly QuantizationOptions _options;

    public EmbeddingGatherQuantizer(QuantizationOptions options) => _options = options;

    public string OperatorType => "Gather";

    public string? TryQuantize(QuantizationGraph graph, NodeProto node)
    {
        var table = graph.FloatInitializer(node.Input[0], out var dims);
        if (table is null)
            return "the data input is not a float32 initializer (not an embedding table)";
        if (dims.Length != 2)
            return $"the table has rank {dims.Length}; only 2-D embedding tables [rows, width] are quantized";
        if (IntAttribute(node, "axis", 0) != 0)
            return "axis ≠ 0 (not a row lookup)";
        // Symmetric regardless of SymmetricWeights: the lookup has no integer kernel that could use a zero point, and
        // per-row symmetric int8 already keeps each row's relative precision.
        var q = WeightQuantizer.Quantize(table, dims, _options.PerChannel ? 0 : -1, symmetric: true, Int8Min, Int8Max);
        string stem = node.Input[0];
        string codes = WeightInitializers.Int8Codes(graph, stem, q, dims);
        string rows = graph.AddNode("Gather", stem, new[] { codes, node.Input[1] }, attributes: IntAttr("axis", 0))[0];
        string asFloat = graph.AddNode("Cast", stem, new[] { rows }, attributes: IntAttr("to", (long)TensorProto.Types.DataType.Float))[0];
        string scale;
        if (_options.PerChannel)
        {
            // Scales stored [rows, 1]: gathering them gives [..., 1], which broadcasts over the embedding width.
            string scales = WeightInitializers.Scales(graph, stem, q, new[] { dims[0], 1L });
            scale = graph.AddNode("Gather", $"{stem}_scale", new[] { scales, node.Input[1] }, attributes: IntAttr("axis", 0))[0];
        }
        else
        {
            scale = WeightInitializers.Scales(graph, stem, q, Array.Empty<long>());
        }
        graph.AddNodeWithOutputs("Mul", stem, new[] { asFloat, scale }, node.Output);
        graph.RemoveNode(node);
        return null;
    }
}
