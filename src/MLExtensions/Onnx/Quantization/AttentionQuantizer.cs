using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;
using static MLExtensions.Onnx.Export.ProtoGraphWriter;

namespace MLExtensions.Onnx;

/// <summary>
/// Int8 self-attention for graphs built for ONNX Runtime: the three query/key/value MatMuls that read the same activation
/// and feed a <c>MultiHeadAttention</c> node (com.microsoft, as <c>ToOnnxRuntime</c> writes each encoder layer) become
/// one <c>QAttention</c> node with the three weights packed side by side ([K, 3N], query | key | value columns). Its uint8
/// input comes from <c>DynamicQuantizeLinear</c> (dynamic mode) or from a <c>QuantizeLinear</c> with the calibrated
/// scale and zero point (static mode).
/// </summary>
/// <remarks>
/// Why: quantized separately, the three projections cost three int8 products plus a float attention kernel; ONNX
/// Runtime's <c>QAttention</c> does the packed product and the attention in one kernel (benchmark <c>quantize-models
/// --part text</c>, fine-tuned MiniLM classifier, batch 1, the VM's slow state: 161–163 reviews/s on 2026-11-27, against
/// 135.3 in the run before this pass existed).
/// With per-column symmetric weights each column keeps the scale it would have had alone, so in dynamic mode the outputs
/// equal those of the separate form; other weight settings (per tensor, asymmetric) would change the numbers, so the pass
/// leaves those graphs to the per-node quantizers.
/// </remarks>
internal static class AttentionQuantizer
{
    private const string AttentionOperator = "MultiHeadAttention";

    /// <summary>Quantizes an activation for <c>QAttention</c>: uint8 codes, scale, zero point; null when it cannot.</summary>
    internal delegate string[]? InputQuantizer(string activation, string stem);

    /// <summary>Dynamic mode: every eligible attention; returns the projection MatMuls it removed (three per attention).</summary>
    public static IReadOnlyCollection<NodeProto> RunDynamic(QuantizationGraph graph, QuantizationOptions options) =>
        Run(graph, options, (activation, stem) => graph.AddNode("DynamicQuantizeLinear", stem, new[] { activation }, outputs: 3));

    /// <summary>
    /// Static mode: every eligible attention whose shared input has calibrated uint8 parameters; returns the projection
    /// MatMuls it removed. <c>QAttention</c> takes uint8 input only, so symmetric (int8) activations leave the graph alone.
    /// </summary>
    public static IReadOnlyCollection<NodeProto> RunStatic(QuantizationGraph graph, QuantizationOptions options,
        IReadOnlyDictionary<string, QuantizationParameters> activations)
    {
        if (options.SymmetricActivations)
            return Array.Empty<NodeProto>();
        return Run(graph, options, (activation, stem) =>
        {
            if (!activations.TryGetValue(activation, out var p))
                return null;
            string scale = graph.AddFloats($"{stem}_input_scale", Array.Empty<long>(), new[] { p.Scale });
            string zeroPoint = graph.AddInitializer($"{stem}_input_zero_point", TensorProto.Types.DataType.Uint8, Array.Empty<long>(), new[] { (byte)p.ZeroPoint });
            string codes = graph.AddNode("QuantizeLinear", stem, new[] { activation, scale, zeroPoint })[0];
            return new[] { codes, scale, zeroPoint };
        });
    }

    private static IReadOnlyCollection<NodeProto> Run(QuantizationGraph graph, QuantizationOptions options, InputQuantizer quantizeInput)
    {
        var removed = new List<NodeProto>();
        if (!options.FuseAttention || !options.PerChannel || !options.SymmetricWeights || !options.OperatorTypes.Contains("MatMul"))
            return removed;
        foreach (var attention in graph.Graph.Node.Where(n => n.OpType == AttentionOperator && n.Domain == OnnxRuntimeDomain).ToList())
            if (TryFuse(graph, options, attention, quantizeInput) is { } projections)
                removed.AddRange(projections);
        return removed;
    }

    /// <summary>Fuses one attention; returns its three projection MatMuls (now removed), or null when it does not fit.</summary>
    private static NodeProto[]? TryFuse(QuantizationGraph graph, QuantizationOptions options, NodeProto attention, InputQuantizer quantizeInput)
    {
        // The exporter's form: query, key, value, bias [3N], key padding mask [batch, sequence] int32; nothing else.
        if (attention.Input.Count != 5 || attention.Input.Any(i => i.Length == 0) || !graph.IsInitializer(attention.Input[3]))
            return null;
        var projections = attention.Input.Take(3).Select(graph.Producer).ToArray();
        if (projections.Any(p => p is null || p.OpType != "MatMul" || p.Domain is not ("" or "ai.onnx") || options.ExcludedNodes.Contains(p.Name)))
            return null;
        string input = projections[0]!.Input[0];
        if (projections.Any(p => p!.Input[0] != input || graph.ConsumerCount(p.Output[0]) != 1))
            return null;
        var weights = new float[3][];
        long rows = 0, columns = 0;
        for (int i = 0; i < 3; i++)
        {
            var weight = graph.FloatInitializer(projections[i]!.Input[1], out var dims);
            if (weight is null || dims.Length != 2 || (i > 0 && (dims[0] != rows || dims[1] != columns)))
                return null;
            (weights[i], rows, columns) = (weight, dims[0], dims[1]);
        }

        string stem = projections[0]!.Input[1] + "_qkv";
        if (quantizeInput(input, stem) is not { } x)
            return null;
        var packed = new float[rows * 3 * columns];
        for (long r = 0; r < rows; r++)
            for (int i = 0; i < 3; i++)
                Array.Copy(weights[i], r * columns, packed, (r * 3 + i) * columns, columns);
        var packedDims = new[] { rows, 3 * columns };
        var q = WeightInitializers.Int8(packed, packedDims, axis: 1, options);
        string codes = WeightInitializers.Int8Codes(graph, stem, q, packedDims);
        string scales = WeightInitializers.Scales(graph, stem, q, new[] { 3 * columns });
        // QAttention inputs: input, weight, bias, input_scale, weight_scale, mask_index, input_zero_point (the symmetric
        // weights' zero point 0 is the default). Its masked-score fill (−10,000) differs from the float node's, but both
        // give masked keys exactly zero weight after the softmax.
        graph.AddNodeWithOutputs("QAttention", stem, new[] { x[0], codes, attention.Input[3], x[1], scales, attention.Input[4], x[2] },
            attention.Output, OnnxRuntimeDomain, IntAttr("num_heads", IntAttribute(attention, "num_heads", 0)));
        graph.RemoveNode(attention);
        foreach (var p in projections)
            graph.RemoveNode(p!);
        return projections!;
    }
}
