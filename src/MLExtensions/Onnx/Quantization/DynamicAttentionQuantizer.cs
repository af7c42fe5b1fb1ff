using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;
using static MLExtensions.Onnx.Export.ProtoGraphWriter;

namespace MLExtensions.Onnx;

/// <summary>
/// Dynamic int8 self-attention for graphs built for ONNX Runtime: the three query/key/value MatMuls that read the same
/// activation and feed a <c>MultiHeadAttention</c> node (com.microsoft, as <c>ToOnnxRuntime</c> writes each encoder
/// layer) become one <c>DynamicQuantizeLinear</c> and one <c>QAttention</c> node with the three weights packed side by
/// side ([K, 3N], query | key | value columns).
/// </summary>
/// <remarks>
/// Why: quantized separately, the three projections cost three int8 products plus a float attention kernel; ONNX
/// Runtime's <c>QAttention</c> does the packed product and the attention in one kernel (benchmark <c>quantize-models
/// --part text</c>, fine-tuned MiniLM classifier, batch 1, the VM's slow state: 161–163 reviews/s on 2026-11-27, against
/// 135.3 in the run before this pass existed).
/// With per-column symmetric weights each column keeps the scale it would have had alone, so the outputs equal those of
/// the separate form; other weight settings (per tensor, asymmetric) would change the numbers, so the pass leaves those
/// graphs to <see cref="DynamicMatMulQuantizer"/>.
/// </remarks>
internal static class DynamicAttentionQuantizer
{
    private const string AttentionOperator = "MultiHeadAttention";

    /// <summary>Rewrites every eligible attention; returns how many it fused (three MatMuls each).</summary>
    public static int Run(QuantizationGraph graph, QuantizationOptions options)
    {
        if (!options.FuseAttention || !options.PerChannel || !options.SymmetricWeights || !options.OperatorTypes.Contains("MatMul"))
            return 0;
        int fused = 0;
        foreach (var attention in graph.Graph.Node.Where(n => n.OpType == AttentionOperator && n.Domain == OnnxRuntimeDomain).ToList())
            if (TryFuse(graph, options, attention))
                fused++;
        return fused;
    }

    private static bool TryFuse(QuantizationGraph graph, QuantizationOptions options, NodeProto attention)
    {
        // The exporter's form: query, key, value, bias [3N], key padding mask [batch, sequence] int32; nothing else.
        if (attention.Input.Count != 5 || attention.Input.Any(i => i.Length == 0) || !graph.IsInitializer(attention.Input[3]))
            return false;
        var projections = attention.Input.Take(3).Select(graph.Producer).ToArray();
        if (projections.Any(p => p is null || p.OpType != "MatMul" || p.Domain is not ("" or "ai.onnx") || options.ExcludedNodes.Contains(p.Name)))
            return false;
        string input = projections[0]!.Input[0];
        if (projections.Any(p => p!.Input[0] != input || graph.ConsumerCount(p.Output[0]) != 1))
            return false;
        var weights = new float[3][];
        long rows = 0, columns = 0;
        for (int i = 0; i < 3; i++)
        {
            var weight = graph.FloatInitializer(projections[i]!.Input[1], out var dims);
            if (weight is null || dims.Length != 2 || (i > 0 && (dims[0] != rows || dims[1] != columns)))
                return false;
            (weights[i], rows, columns) = (weight, dims[0], dims[1]);
        }

        var packed = new float[rows * 3 * columns];
        for (long r = 0; r < rows; r++)
            for (int i = 0; i < 3; i++)
                Array.Copy(weights[i], r * columns, packed, (r * 3 + i) * columns, columns);
        var packedDims = new[] { rows, 3 * columns };
        string stem = projections[0]!.Input[1] + "_qkv";
        var q = WeightInitializers.Int8(packed, packedDims, axis: 1, options);
        string codes = WeightInitializers.Int8Codes(graph, stem, q, packedDims);
        string scales = WeightInitializers.Scales(graph, stem, q, new[] { 3 * columns });
        var x = graph.AddNode("DynamicQuantizeLinear", stem, new[] { input }, outputs: 3);
        // QAttention inputs: input, weight, bias, input_scale, weight_scale, mask_index, input_zero_point (the symmetric
        // weights' zero point 0 is the default). Its masked-score fill (−10,000) differs from the float node's, but both
        // give masked keys exactly zero weight after the softmax.
        graph.AddNodeWithOutputs("QAttention", stem, new[] { x[0], codes, attention.Input[3], x[1], scales, attention.Input[4], x[2] },
            attention.Output, OnnxRuntimeDomain, IntAttr("num_heads", IntAttribute(attention, "num_heads", 0)));
        graph.RemoveNode(attention);
        foreach (var p in projections)
            graph.RemoveNode(p!);
        return true;
    }
}
