using Microsoft.ML;

namespace MLExtensions.Sweeps;

/// <summary>What a sweep found: the best model and parameters, and every trial.</summary>
public sealed class SweepResult
{
    internal SweepResult(ITransformer bestModel, SweepTrial best, IReadOnlyList<SweepTrial> trials, SweepOptions options)
    {
        BestModel = bestModel;
        BestTrial = best;
        Trials = trials;
        Metric = options.Metric;
        Task = options.Task;
    }

    /// <summary>The best parameters' pipeline, refitted on all the training data (unless <see cref="SweepOptions.RefitBestModel"/> is false).</summary>
    public ITransformer BestModel { get; }

    /// <summary>The best completed trial.</summary>
    public SweepTrial BestTrial { get; }

    /// <summary>The best trial's parameters.</summary>
    public SweepParameters BestParameters => BestTrial.Parameters;

    /// <summary>The best trial's metric on the validation data.</summary>
    public double BestMetric => BestTrial.Metric;

    /// <summary>Every trial in the order it ran (including those read back from a journal).</summary>
    public IReadOnlyList<SweepTrial> Trials { get; }

    /// <summary>The metric optimized.</summary>
    public SweepMetric Metric { get; }

    /// <summary>The task the metric belongs to.</summary>
    public SweepTask Task { get; }

    /// <summary>Whether larger metric values are better.</summary>
    public bool HigherIsBetter => SweepMetrics.HigherIsBetter(Metric);

    /// <summary>
    /// How much of the completed trials' metric variance each parameter explains on its own (the correlation ratio η²:
    /// trials grouped by choice, or by quantile of a numeric value (up to quartiles, about 3 trials per group at least); between-group variance over total variance),
    /// normalised to sum to 1. All zeros with fewer than 3 completed trials or no variance.
    /// </summary>
    public IReadOnlyDictionary<string, double> ParameterImportance() => SweepReport.Importance(this);

    /// <summary>
    /// Writes what people look at into <paramref name="folder"/> (created if needed): <c>trials.csv</c> and <c>trials.md</c>
    /// (one row per trial), <c>metric_per_trial.png</c> (metric in time order, pruned trials marked, best so far),
    /// <c>learning_curves.png</c> (intermediate values per epoch or subsample) and <c>parameter_importance.png</c>.
    /// </summary>
    /// <returns>The paths written.</returns>
    public IReadOnlyList<string> SaveReport(string folder) => SweepReport.Save(this, folder);
}
