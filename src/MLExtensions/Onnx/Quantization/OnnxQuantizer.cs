using Onnx;

namespace MLExtensions.Onnx;

/// <summary>
/// Post-training quantization of ONNX models, in process: dynamic int8, static int8 in QDQ format (calibrated with
/// ONNX Runtime), or float16. The result runs on ONNX Runtime's CPU provider and keeps the float model's graph
/// inputs and outputs. See docs/quantization.md for what each mode produces and what stays in float.
/// </summary>
public static class OnnxQuantizer
{
    /// <summary>Quantizes a serialized ONNX model.</summary>
    /// <param name="model">The float32 model's bytes.</param>
    /// <param name="options">The options (validated first); null for the defaults (dynamic int8).</param>
    /// <param name="calibration">
    /// Static mode only: representative inputs, one <see cref="CalibrationSample"/> per run (at most
    /// <see cref="QuantizationOptions.MaxCalibrationRows"/> are used). Ignored by the other modes.
    /// </param>
    /// <returns>The quantized model and a report.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException">Static mode without calibration samples, or a sample that does not match the model's inputs (names the input, expected and found).</exception>
    /// <exception cref="InvalidDataException">The bytes are not an ONNX model ONNX Runtime can load.</exception>
    /// <exception cref="NotSupportedException">The model's opset is too old to upgrade safely.</exception>
    /// <exception cref="InvalidOperationException">Nothing in the model can be quantized with these options (the message lists why per node).</exception>
    public static QuantizationResult Quantize(byte[] model, QuantizationOptions? options = null, IEnumerable<CalibrationSample>? calibration = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new QuantizationOptions();
        options.Validate();
        List<CalibrationSample>? samples = null;
        if (options.Mode == QuantizationMode.StaticInt8)
        {
            samples = calibration?.Take(options.MaxCalibrationRows).ToList();
            if (samples is null || samples.Count == 0)
                throw new ArgumentException("Static int8 quantization needs calibration samples (representative inputs); none were given. Pass at least one CalibrationSample, or use QuantizationMode.DynamicInt8, which needs none.", nameof(calibration));
        }

        // Parsed first so that bytes of another format fail with our message rather than ONNX Runtime's.
        ModelPreparation.Parse(model);
        byte[] prepared = options.OptimizeBeforeQuantizing ? ModelPreparation.OptimizeBasic(model) : model;
        var proto = ModelPreparation.Parse(prepared);
        ModelPreparation.DropInitializerInputs(proto);
        var graph = new QuantizationGraph(proto);
        var quantized = new Dictionary<string, int>(StringComparer.Ordinal);
        var skipped = new List<SkippedNode>();
        IReadOnlyDictionary<string, (float, float)> ranges = new Dictionary<string, (float, float)>();

        if (options.Mode == QuantizationMode.Float16)
        {
            Float16Converter.Convert(graph, quantized);
        }
        else
        {
            ModelPreparation.UpgradeOpset(proto, ModelPreparation.QuantizationOpset);
            if (options.Mode == QuantizationMode.DynamicInt8)
            {
                // Before the MatMul handler, which would otherwise take the attention's projections one by one.
                int projections = AttentionQuantizer.RunDynamic(graph, options).Count;
                if (projections > 0)
                    quantized["MatMul"] = projections;
                var handlers = new IOperatorQuantizer[]
                {
                    new DynamicMatMulQuantizer(options, "MatMul"), new DynamicMatMulQuantizer(options, "Gemm"),
                    new DynamicConvQuantizer(options), new EmbeddingGatherQuantizer(options),
                };
                RunHandlers(graph, options, handlers, quantized, skipped);
            }
            else
            {
                ranges = StaticQdqQuantizer.Quantize(graph, options, samples!, quantized, skipped);
            }
            if (quantized.Count == 0)
            {
                string why = skipped.Count == 0
                    ? $"it has no node of the requested operator types ({string.Join(", ", options.OperatorTypes)})"
                    : string.Join("; ", skipped.Take(10).Select(s => $"{s.OperatorType} '{s.NodeName}': {s.Reason}"));
                throw new InvalidOperationException($"Nothing in the model can be quantized ({options.Mode}): {why}.");
            }
        }
        graph.RemoveUnusedInitializers();
        byte[] bytes = graph.ToBytes();
        return new QuantizationResult(bytes, new QuantizationReport(options.Mode, model.LongLength, bytes.LongLength, quantized, skipped, ranges));
    }

    /// <summary>Offers every node of a requested type (in graph order) to its handler; records what happened.</summary>
    internal static void RunHandlers(QuantizationGraph graph, QuantizationOptions options, IReadOnlyList<IOperatorQuantizer> handlers,
        Dictionary<string, int> quantized, List<SkippedNode> skipped)
    {
        var byType = handlers.Where(h => options.OperatorTypes.Contains(h.OperatorType)).ToDictionary(h => h.OperatorType, StringComparer.Ordinal);
        foreach (var node in graph.Graph.Node.ToList())
        {
            if (node.Domain is not ("" or "ai.onnx") || !byType.TryGetValue(node.OpType, out var handler))
                continue;
            string name = QuantizationGraph.DisplayName(node);
            string? reason = options.ExcludedNodes.Contains(node.Name) ? "excluded by QuantizationOptions.ExcludedNodes" : handler.TryQuantize(graph, node);
            if (reason is null)
                quantized[node.OpType] = quantized.GetValueOrDefault(node.OpType) + 1;
            else
                skipped.Add(new SkippedNode(name, node.OpType, reason));
        }
    }
}
