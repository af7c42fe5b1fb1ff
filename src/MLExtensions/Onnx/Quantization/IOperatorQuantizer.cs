using Onnx;

namespace MLExtensions.Onnx;

/// <summary>Rewrites one kind of node into its quantized form (one implementation per operator and mode).</summary>
internal interface IOperatorQuantizer
{
    /// <summary>The ONNX operator type handled, e.g. <c>MatMul</c>.</summary>
    string OperatorType { get; }

    /// <summary>
    /// Replaces <paramref name="node"/> in <paramref name="graph"/> by quantized nodes that write the same outputs, or
    /// leaves the graph untouched and returns why the node has to stay in float.
    /// </summary>
    /// <returns>null when the node was quantized; otherwise the reason it was not.</returns>
    string? TryQuantize(QuantizationGraph graph, NodeProto node);
}
