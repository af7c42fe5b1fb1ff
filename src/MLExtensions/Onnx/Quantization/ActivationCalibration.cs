using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MLExtensions.Onnx;

/// <summary>
/// Runs the calibration samples through ONNX Runtime with the tensors to quantize exposed as extra graph outputs, and
/// feeds their values to one <see cref="RangeCalibrator"/> per tensor.
/// </summary>
internal static class ActivationCalibration
{
    public static Dictionary<string, (float Min, float Max)> Collect(ModelProto model, IReadOnlyCollection<string> tensors,
        IReadOnlyList<CalibrationSample> samples, QuantizationOptions options)
    {
        var augmented = model.Clone();
        var declared = new HashSet<string>(augmented.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (string name in tensors)
        {
            // No type given: ONNX Runtime infers it, as for any intermediate tensor.
            if (declared.Add(name))
                augmented.Graph.Output.Add(new ValueInfoProto { Name = name });
        }
        var calibrators = tensors.ToDictionary(t => t, _ => new RangeCalibrator(options.Calibration, options.Percentile, options.HistogramBins, options.SymmetricActivations), StringComparer.Ordinal);
        // Graph optimizations could remove or rename intermediate tensors; the values must be those of this graph.
        using var sessionOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(augmented), sessionOptions);
        var names = tensors.ToArray();
        int passes = calibrators.Values.Any(c => c.NeedsSecondPass) ? 2 : 1;
        for (int pass = 0; pass < passes; pass++)
        {
            for (int i = 0; i < samples.Count; i++)
            {
                var inputs = samples[i].ToOrtValues(session.InputMetadata, i);
                try
                {
                    using var runOptions = new RunOptions();
                    using var outputs = session.Run(runOptions, inputs.Keys.ToArray(), inputs.Values.ToArray(), names);
                    for (int k = 0; k < names.Length; k++)
                    {
                        var values = outputs[k].GetTensorDataAsSpan<float>();
                        if (pass == 0)
                            calibrators[names[k]].ObserveMinMax(values);
                        else
                            calibrators[names[k]].ObserveHistogram(values);
                    }
                }
                finally
                {
                    foreach (var v in inputs.Values)
                        v.Dispose();
                }
            }
        }
        return calibrators.ToDictionary(kv => kv.Key, kv => kv.Value.Range(), StringComparer.Ordinal);
    }
}
