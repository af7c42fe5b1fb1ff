using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Onnx.Export;
using MLExtensions.Onnx.Runtime;

namespace MLExtensions.Onnx;

/// <summary>
/// What <c>mlContext.Model.Quantize</c> did: the quantizer's report (sizes, nodes quantized or left in float) and how the
/// quantized model compares with the float one on the calibration rows.
/// </summary>
/// <param name="Report">The graph-level report: file sizes before/after, nodes per operator, nodes left in float and why.</param>
/// <param name="CalibrationRows">Rows of the calibration data scored by both models.</param>
/// <param name="PredictionAgreement">Fraction of those rows where both models predict the same label; null for regression.</param>
/// <param name="FloatAccuracy">Accuracy of the float model on those rows, when they have a label column; otherwise null.</param>
/// <param name="QuantizedAccuracy">Accuracy of the quantized model on the same rows; null without labels.</param>
/// <param name="MaxScoreDifference">Largest absolute difference of any Score value between the two models (for embedding models, of any embedding component).</param>
public sealed record QuantizationSummary(QuantizationReport Report, long CalibrationRows, double? PredictionAgreement,
    double? FloatAccuracy, double? QuantizedAccuracy, double MaxScoreDifference)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Report.Mode}: {Size(Report.FloatModelBytes)} → {Size(Report.QuantizedModelBytes)} ({Report.SizeRatio:P1}); " +
        $"on {CalibrationRows} calibration rows: " +
        (PredictionAgreement is double a ? $"labels agree {a:P2}, " : "") +
        (FloatAccuracy is double f && QuantizedAccuracy is double q ? $"accuracy {f:P2} → {q:P2}, " : "") +
        $"max |Δ Score| {MaxScoreDifference:G3}";

    private static string Size(long bytes) => bytes >= 1 << 20 ? $"{bytes / 1048576.0:F1} MiB" : $"{bytes / 1024.0:F1} KiB";
}

/// <summary>
/// Post-training quantization of a fitted network of this library: export to ONNX, calibrate on rows read exactly as the
/// network reads them, quantize (<see cref="OnnxQuantizer"/>), and put an ONNX Runtime-backed transformer in the network's place.
/// </summary>
internal static class NetworkQuantization
{
    public static (ITransformer Model, QuantizationSummary Summary) Quantize(IHostEnvironment env, ITransformer model, IDataView calibrationData, QuantizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibrationData);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Core.Native.TorchNativeLoader.EnsureLoaded();

        var steps = ExportTarget.Steps(model).ToList();
        int index = steps.FindLastIndex(ExportTarget.IsExportable);
        if (index < 0)
            throw new ArgumentException($"Quantize needs one of MLExtensions' trained networks ({ExportTarget.Supported}), or a TransformerChain containing one; got {ExportTarget.Describe(model)}.", nameof(model));
        var network = steps[index];

        // The calibration rows reach the network through the chain's earlier steps, as in scoring.
        var upstream = steps.Take(index).Aggregate(calibrationData, (view, step) => step.Transform(view));
        var reader = NetworkInputReader.ForStep(network);
        try
        {
            reader.Validate(upstream.Schema);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentOutOfRangeException(nameof(calibrationData), $"The calibration data does not fit the network: {e.Message}");
        }
        var samples = ReadSamples(upstream, reader, options.MaxCalibrationRows);
        if (samples.Count == 0)
            throw new ArgumentException("The calibration data has no rows; quantization needs at least one row to calibrate and check the quantized model.", nameof(calibrationData));

        // The quantized model runs only on ONNX Runtime, so the export may use its fused operators (as ToOnnxRuntime's float model does).
        var floatModel = ExportTarget.Build(network, targetsOnnxRuntime: true).ToByteArray();
        var result = OnnxQuantizer.Quantize(floatModel, options, samples);
        steps[index] = OnnxRuntimeStep.Create(env, network, result.Model);
        var quantized = ReferenceEquals(model, network) ? steps[index] : new TransformerChain<ITransformer>(steps.ToArray());

        var summary = network is NetworkTransformerBase scored
            ? Compare(env, model, quantized, calibrationData, scored.Kind, result.Report, options.MaxCalibrationRows)
            : CompareEmbeddings(env, model, quantized, calibrationData, ExportedEmbedding.Columns(network).Output, result.Report, options.MaxCalibrationRows);
        using (var channel = env.Register(nameof(NetworkQuantization)).Start("Quantize"))
            channel.Info(MessageSensitivity.None, "Quantized the network: {0}.", summary);
        return (quantized, summary);
    }

    /// <summary>Up to <paramref name="limit"/> rows, each as one batch-of-one sample named like the ONNX inputs.</summary>
    private static List<CalibrationSample> ReadSamples(IDataView data, NetworkInputReader reader, int limit)
    {
        var samples = new List<CalibrationSample>();
        using var cursor = data.GetRowCursor(reader.Columns.Select(c => data.Schema[c]));
        var read = reader.CreateReader(cursor);
        while (samples.Count < limit && cursor.MoveNext())
        {
            var sample = new CalibrationSample();
            foreach (var value in read())
            {
                switch (value.Value)
                {
                    case Microsoft.ML.OnnxRuntime.Tensors.Tensor<float> f:
                        sample.Add(value.Name, f.ToArray(), f.Dimensions.ToArray().Select(d => (long)d).ToArray());
                        break;
                    case Microsoft.ML.OnnxRuntime.Tensors.Tensor<long> l:
                        sample.Add(value.Name, l.ToArray(), l.Dimensions.ToArray().Select(d => (long)d).ToArray());
                        break;
                    default:
                        throw new NotSupportedException($"Network input '{value.Name}' has a type quantization calibration does not read ({value.Value?.GetType().Name}).");
                }
            }
            samples.Add(sample);
        }
        return samples;
    }

    /// <summary>Scores the first calibration rows with both models and compares scores, labels and (when present) accuracy.</summary>
    private static QuantizationSummary Compare(IHostEnvironment env, ITransformer original, ITransformer quantized, IDataView data, PredictionTask kind,
        QuantizationReport report, int limit)
    {
        var rows = new DataOperationsCatalog(env).TakeRows(data, limit);
        var before = original.Transform(rows);
        var after = quantized.Transform(rows);
        var (scoresBefore, labelsBefore) = Read(before, kind);
        var (scoresAfter, labelsAfter) = Read(after, kind);
        double maxDifference = 0;
        for (int i = 0; i < scoresBefore.Count; i++)
            for (int j = 0; j < scoresBefore[i].Length; j++)
                maxDifference = Math.Max(maxDifference, Math.Abs(scoresBefore[i][j] - scoresAfter[i][j]));
        double? agreement = kind == PredictionTask.Regression || labelsBefore.Count == 0
            ? null : labelsBefore.Zip(labelsAfter).Count(p => p.First == p.Second) / (double)labelsBefore.Count;
        double? floatAccuracy = Accuracy(env, before, kind), quantizedAccuracy = Accuracy(env, after, kind);
        return new QuantizationSummary(report, scoresBefore.Count, agreement, floatAccuracy, quantizedAccuracy, maxDifference);
    }

    /// <summary>Embedding models: the largest difference of any embedding component on the first calibration rows (no labels to agree on).</summary>
    private static QuantizationSummary CompareEmbeddings(IHostEnvironment env, ITransformer original, ITransformer quantized, IDataView data, string column,
        QuantizationReport report, int limit)
    {
        var rows = new DataOperationsCatalog(env).TakeRows(data, limit);
        var before = original.Transform(rows).GetColumn<float[]>(column).ToList();
        var after = quantized.Transform(rows).GetColumn<float[]>(column).ToList();
        double maxDifference = before.Zip(after).SelectMany(p => p.First.Zip(p.Second, (a, b) => (double)Math.Abs(a - b))).DefaultIfEmpty(0).Max();
        return new QuantizationSummary(report, before.Count, null, null, null, maxDifference);
    }

    private static (List<float[]> Scores, List<long> Labels) Read(IDataView scored, PredictionTask kind)
    {
        var scores = new List<float[]>();
        var labels = new List<long>();
        var score = scored.Schema["Score"];
        var predicted = scored.Schema.GetColumnOrNull("PredictedLabel");
        using var cursor = scored.GetRowCursor(predicted is { } p ? new[] { score, p } : new[] { score });
        if (kind == PredictionTask.MulticlassClassification)
        {
            var getScore = cursor.GetGetter<VBuffer<float>>(score);
            var getLabel = cursor.GetGetter<uint>(predicted!.Value);
            VBuffer<float> s = default;
            uint l = 0;
            while (cursor.MoveNext())
            {
                getScore(ref s);
                getLabel(ref l);
                scores.Add(s.DenseValues().ToArray());
                labels.Add(l);
            }
        }
        else
        {
            var getScore = cursor.GetGetter<float>(score);
            var getLabel = kind == PredictionTask.BinaryClassification ? cursor.GetGetter<bool>(predicted!.Value) : null;
            float s = 0;
            bool l = false;
            while (cursor.MoveNext())
            {
                getScore(ref s);
                scores.Add(new[] { s });
                if (getLabel is not null)
                {
                    getLabel(ref l);
                    labels.Add(l ? 1 : 0);
                }
            }
        }
        return (scores, labels);
    }

    /// <summary>Accuracy against a "Label" column of the right type, when the data has one.</summary>
    private static double? Accuracy(IHostEnvironment env, IDataView scored, PredictionTask kind)
    {
        var label = scored.Schema.GetColumnOrNull(DefaultColumnNames.Label);
        if (label is null)
            return null;
        if (kind == PredictionTask.MulticlassClassification && label.Value.Type is KeyDataViewType)
            return new MulticlassClassificationCatalog(env).Evaluate(scored).MicroAccuracy;
        if (kind == PredictionTask.BinaryClassification && label.Value.Type == BooleanDataViewType.Instance)
            return new BinaryClassificationCatalog(env).Evaluate(scored).Accuracy;
        return null;
    }
}
