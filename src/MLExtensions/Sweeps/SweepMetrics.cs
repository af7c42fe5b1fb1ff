using Microsoft.ML;

namespace MLExtensions.Sweeps;

/// <summary>Which metrics belong to which task, their direction, and scoring a fitted model with the task's <c>Evaluate</c>.</summary>
internal static class SweepMetrics
{
    public static IReadOnlyList<SweepMetric> For(SweepTask task) => task switch
    {
        SweepTask.BinaryClassification => new[] { SweepMetric.Accuracy, SweepMetric.AreaUnderRocCurve, SweepMetric.F1Score, SweepMetric.LogLoss },
        SweepTask.MulticlassClassification => new[] { SweepMetric.MicroAccuracy, SweepMetric.MacroAccuracy, SweepMetric.LogLoss },
        _ => new[] { SweepMetric.RSquared, SweepMetric.MeanAbsoluteError, SweepMetric.RootMeanSquaredError },
    };

    public static bool Fits(SweepTask task, SweepMetric metric) => For(task).Contains(metric);

    public static bool HigherIsBetter(SweepMetric metric) =>
        metric is not (SweepMetric.LogLoss or SweepMetric.MeanAbsoluteError or SweepMetric.RootMeanSquaredError);

    /// <summary>Scores <paramref name="model"/> on <paramref name="data"/> (default column names).</summary>
    public static double Evaluate(MLContext ml, SweepTask task, SweepMetric metric, ITransformer model, IDataView data)
    {
        var scored = model.Transform(data);
        switch (task)
        {
            case SweepTask.BinaryClassification:
                // LogLoss needs probabilities; the calibrated evaluator gives them and every other metric too.
                var binary = scored.Schema.GetColumnOrNull("Probability") is null
                    ? ml.BinaryClassification.EvaluateNonCalibrated(scored)
                    : ml.BinaryClassification.Evaluate(scored);
                return metric switch
                {
                    SweepMetric.Accuracy => binary.Accuracy,
                    SweepMetric.AreaUnderRocCurve => binary.AreaUnderRocCurve,
                    SweepMetric.F1Score => binary.F1Score,
                    _ => binary is Microsoft.ML.Data.CalibratedBinaryClassificationMetrics calibrated
                        ? calibrated.LogLoss
                        : throw new InvalidOperationException("Metric LogLoss needs a Probability column; the pipeline's model has none (add a calibrator)."),
                };
            case SweepTask.MulticlassClassification:
                var multi = ml.MulticlassClassification.Evaluate(scored);
                return metric switch
                {
                    SweepMetric.MicroAccuracy => multi.MicroAccuracy,
                    SweepMetric.MacroAccuracy => multi.MacroAccuracy,
                    _ => multi.LogLoss,
                };
            default:
                var regression = ml.Regression.Evaluate(scored);
                return metric switch
                {
                    SweepMetric.RSquared => regression.RSquared,
                    SweepMetric.MeanAbsoluteError => regression.MeanAbsoluteError,
                    _ => regression.RootMeanSquaredError,
                };
        }
    }
}
