using System.Runtime.InteropServices;
using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;
using static MLExtensions.Onnx.QuantizedRange;

namespace MLExtensions.Onnx;

/// <summary>
/// Static int8 in QDQ format. For every quantizable MatMul/Gemm/Conv: its activation input and its output get a
/// QuantizeLinear → DequantizeLinear pair with calibrated parameters, its weight becomes int8 behind a (per-channel)
/// DequantizeLinear, and a Conv/Gemm bias becomes int32 with scale = input scale × weight scale. The graph stays a
/// float graph with explicit rounding points; ONNX Runtime's CPU provider recognizes DQ → op → Q groups and runs them
/// with int8 kernels. Where a node's only consumer is a Relu, the Relu output is quantized instead of the node output,
/// so that ONNX Runtime can drop the Relu into the quantization (its range starts at 0).
/// </summary>
internal static class StaticQdqQuantizer
{
    private sealed record Candidate(NodeProto Node, float[] Weight, long[] Dims, int Axis, string Activation, string? Output);

    public static IReadOnlyDictionary<string, (float Min, float Max)> Quantize(QuantizationGraph graph, QuantizationOptions options,
        IReadOnlyList<CalibrationSample> samples, Dictionary<string, int> quantized, List<SkippedNode> skipped)
    {
        var candidates = new List<Candidate>();
        var graphOutputs = new HashSet<string>(graph.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (var node in graph.Graph.Node.ToList())
        {
            if (node.Domain is not ("" or "ai.onnx") || node.OpType is not ("MatMul" or "Gemm" or "Conv") || !options.OperatorTypes.Contains(node.OpType))
                continue;
            string? reason = options.ExcludedNodes.Contains(node.Name) ? "excluded by QuantizationOptions.ExcludedNodes" : null;
            Candidate? candidate = null;
            if (reason is null)
                (candidate, reason) = Inspect(graph, node, graphOutputs);
            if (candidate is null)
                skipped.Add(new SkippedNode(DisplayName(node), node.OpType, reason!));
            else
                candidates.Add(candidate);
        }

        var tensors = ActivationTensors(candidates);
        var ranges = candidates.Count == 0
            ? new Dictionary<string, (float, float)>()
            : ActivationCalibration.Collect(graph.Model, tensors, samples, options);

        var activationParameters = new Dictionary<string, QuantizationParameters>(StringComparer.Ordinal);
        foreach (string tensor in tensors)
        {
            var (min, max) = ranges[tensor];
            activationParameters[tensor] = options.SymmetricActivations
                ? QuantizationParameters.FromRange(min, max, Int8Min, Int8Max, symmetric: true)
                : QuantizationParameters.FromRange(min, max, UInt8Min, UInt8Max, symmetric: false);
        }

        // Attention first: the projections it packs into QAttention leave the candidates, and their shared input is then
        // quantized only by the QAttention's own QuantizeLinear (its other readers, the residual Add, keep the float value).
        var fused = AttentionQuantizer.RunStatic(graph, options, activationParameters).ToHashSet();
        if (fused.Count > 0)
        {
            candidates.RemoveAll(c => fused.Contains(c.Node));
            quantized["MatMul"] = fused.Count;
            tensors = ActivationTensors(candidates);
        }
        foreach (var c in candidates)
        {
            QuantizeWeight(graph, c, activationParameters[c.Activation].Scale, options);
            quantized[c.Node.OpType] = quantized.GetValueOrDefault(c.Node.OpType) + 1;
        }
        foreach (string tensor in tensors)
            InsertQdq(graph, tensor, activationParameters[tensor], options.SymmetricActivations);

        if (options.OperatorTypes.Contains("Gather"))
            OnnxQuantizer.RunHandlers(graph, options, new IOperatorQuantizer[] { new EmbeddingGatherQuantizer(options) }, quantized, skipped);
        return ranges;
    }

    /// <summary>The tensors that get calibrated Q → DQ pairs: each candidate's activation input, and its output where quantized.</summary>
    private static List<string> ActivationTensors(IEnumerable<Candidate> candidates) =>
        candidates.SelectMany(c => c.Output is null ? new[] { c.Activation } : new[] { c.Activation, c.Output }).Distinct(StringComparer.Ordinal).ToList();

    private static (Candidate?, string?) Inspect(QuantizationGraph graph, NodeProto node, HashSet<string> graphOutputs)
    {
        var weight = graph.FloatInitializer(node.Input[1], out var dims);
        if (weight is null)
            return (null, "the weight input is not a float32 initializer (activation × activation products stay float)");
        if (graph.IsInitializer(node.Input[0]))
            return (null, "the activation input is a constant");
        int axis;
        switch (node.OpType)
        {
            case "Conv":
                axis = 0;
                break;
            case "MatMul" when dims.Length == 2:
                axis = 1;
                break;
            case "MatMul":
                return (null, $"the weight has rank {dims.Length}; only 2-D weights are quantized");
            default: // Gemm
                if (IntAttribute(node, "transA", 0) != 0)
                    return (null, "transA = 1 is not supported by ONNX Runtime's quantized Gemm path; left in float");
                axis = IntAttribute(node, "transB", 0) != 0 ? 0 : 1;
                break;
        }
        if (node.OpType != "Conv")
        {
            // MatMul/Gemm outputs stay float: ONNX Runtime runs DQ → MatMul without a following Q as an int8 matmul
            // with a float result, and on MiniLM quantizing these outputs too (before the bias and residual adds)
            // dropped the mean sentence-embedding cosine from 0.990 to 0.939 (16 calibration reviews, 24 test reviews).
            return (new Candidate(node, weight, dims, axis, node.Input[0], null), null);
        }
        string? output = node.Output[0];
        var consumers = graph.Readers(output);
        if (!graphOutputs.Contains(output) && consumers.Count == 1 && consumers[0].OpType == "Relu" && consumers[0].Domain is "" or "ai.onnx")
            output = consumers[0].Output[0];
        // A graph output is read by the caller, who expects the float values; a Q/DQ pair there would have no reader.
        if (graphOutputs.Contains(output))
            output = null;
        return (new Candidate(node, weight, dims, axis, node.Input[0], output), null);
    }

    private static void QuantizeWeight(QuantizationGraph graph, Candidate c, float activationScale, QuantizationOptions options)
    {
        var q = WeightInitializers.Int8(c.Weight, c.Dims, c.Axis, options);
        string stem = c.Node.Input[1];
        long[] paramDims = q.Axis < 0 ? Array.Empty<long>() : new[] { c.Dims[c.Axis] };
        string codes = WeightInitializers.Int8Codes(graph, stem, q, c.Dims);
        string scales = WeightInitializers.Scales(graph, stem, q, paramDims);
        string zeroPoints = WeightInitializers.Int8ZeroPoints(graph, stem, q, paramDims);
        var attributes = q.Axis < 0 ? Array.Empty<AttributeProto>() : new[] { IntAttr("axis", q.Axis) };
        c.Node.Input[1] = graph.AddNode("DequantizeLinear", stem, new[] { codes, scales, zeroPoints }, attributes: attributes)[0];

        // Bias as int32 with scale = activation scale × weight scale: the integer kernel adds it to the int32
        // accumulator directly. Only a 1-D bias with one value per output channel fits that form.
        if (c.Node.OpType is "Conv" or "Gemm" && c.Node.Input.Count > 2 && c.Node.Input[2].Length > 0)
        {
            string biasName = c.Node.Input[2];
            var bias = graph.FloatInitializer(biasName, out var biasDims);
            long channels = c.Node.OpType == "Conv" ? c.Dims[0] : c.Dims[c.Axis];
            float beta = c.Node.OpType == "Gemm" ? FloatAttribute(c.Node, "beta", 1f) : 1f;
            if (bias is null || biasDims.Length != 1 || biasDims[0] != channels || beta != 1f)
                return;
            var biasScales = new float[channels];
            var biasCodes = new int[channels];
            for (int i = 0; i < channels; i++)
            {
                biasScales[i] = activationScale * q.Parameters[q.Axis < 0 ? 0 : i].Scale;
                biasCodes[i] = (int)Math.Clamp(Math.Round(bias[i] / biasScales[i], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            }
            string biasCodesName = graph.AddInitializer($"{biasName}_quantized", TensorProto.Types.DataType.Int32, biasDims, MemoryMarshal.AsBytes(biasCodes.AsSpan()).ToArray());
            string biasScale = graph.AddFloats($"{biasName}_scale", biasDims, biasScales);
            string biasZero = graph.AddInitializer($"{biasName}_zero_point", TensorProto.Types.DataType.Int32, biasDims, new byte[channels * 4]);
            c.Node.Input[2] = graph.AddNode("DequantizeLinear", biasName, new[] { biasCodesName, biasScale, biasZero }, attributes: IntAttr("axis", 0))[0];
        }
    }

    /// <summary>Inserts Q → DQ after <paramref name="tensor"/> and points every reader of it at the DQ output; graph outputs keep the float tensor.</summary>
    private static void InsertQdq(QuantizationGraph graph, string tensor, QuantizationParameters p, bool symmetric)
    {
        var readers = graph.Readers(tensor);
        string scale = graph.AddFloats($"{tensor}_scale", Array.Empty<long>(), new[] { p.Scale });
        string zeroPoint = symmetric
            ? graph.AddInitializer($"{tensor}_zero_point", TensorProto.Types.DataType.Int8, Array.Empty<long>(), new[] { unchecked((byte)(sbyte)p.ZeroPoint) })
            : graph.AddInitializer($"{tensor}_zero_point", TensorProto.Types.DataType.Uint8, Array.Empty<long>(), new[] { (byte)p.ZeroPoint });
        string codes = graph.AddNode("QuantizeLinear", tensor, new[] { tensor, scale, zeroPoint })[0];
        string restored = graph.AddNode("DequantizeLinear", tensor, new[] { codes, scale, zeroPoint })[0];
        foreach (var reader in readers)
        {
            for (int i = 0; i < reader.Input.Count; i++)
                if (reader.Input[i] == tensor)
                    reader.Input[i] = restored;
        }
    }
}
