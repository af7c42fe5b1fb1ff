using MLExtensions.Core;

namespace MLExtensions.Sweeps;

/// <summary>
/// Watches the networks a trial's pipeline fits (installed as the <see cref="AmbientTrainingCallback"/> while the trial
/// fits, so user factories need no change). After each epoch it records the validation value the loop has just
/// computed — no second evaluation pass — asks the pruner, and stops training through <see cref="TrainingControl"/>.
/// </summary>
/// <remarks>
/// What is recorded, by sweep metric (the loop validates on the trainer's own validation split):
/// <list type="bullet">
/// <item>Accuracy / MicroAccuracy: the loop's accuracy (same definition).</item>
/// <item>RootMeanSquaredError: the loop's RMSE (same definition).</item>
/// <item>LogLoss: the loop's validation loss, which is the cross-entropy; divided by ln 2 for binary tasks because
/// ML.NET reports binary log-loss in bits.</item>
/// <item>Other metrics (MacroAccuracy, AreaUnderRocCurve, F1Score, RSquared, MeanAbsoluteError): the loop does not
/// compute them, so its own metric (accuracy or RMSE) stands in, with its own direction. Pruners only compare trials
/// with each other at the same step, so a consistent stand-in is enough; the final metric is always the sweep's.</item>
/// </list>
/// Only the first training run of a trial is watched (the first network, the first cross-validation fold, the first
/// phase of a two-phase fine-tuning); later runs are counted in <see cref="Epochs"/> but not pruned.
/// </remarks>
internal sealed class TrialObserver : ITrainingCallback
{
    private readonly SweepTrial _trial;
    private readonly IReadOnlyList<SweepTrial> _finished;
    private readonly ISweepPruner _pruner;
    private readonly SweepOptions _options;
    private readonly Action _reported;
    private int _runs;
    private bool _watching;
    private int _epochsAtStart;

    public TrialObserver(SweepTrial trial, IReadOnlyList<SweepTrial> finished, ISweepPruner pruner, SweepOptions options, bool watch, Action reported)
    {
        _trial = trial;
        _finished = finished;
        _pruner = pruner;
        _options = options;
        _reported = reported;
        _runs = watch ? 0 : 1;
    }

    /// <summary>Epochs trained by every network while this observer was installed.</summary>
    public int Epochs { get; private set; }

    /// <summary>Whether the pruner stopped the trial.</summary>
    public bool Pruned { get; private set; }

    public void OnTrainBegin(TrainingRun run)
    {
        _watching = _runs++ == 0;
        _epochsAtStart = run.State.EpochsCompleted; // a run resumed from a checkpoint did not train those epochs now
    }

    /// <summary>Counts the epochs when the run ends however it ended, so an epoch whose later callback threw still counts.</summary>
    public void OnTrainEnd(TrainingRun run, Exception? error) => Epochs += run.State.EpochsCompleted - _epochsAtStart;

    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        if (!_watching)
            return;
        var state = run.State;
        var epoch = state.History[^1];
        if (Map(state, epoch) is not double value)
            return; // no validation data in this trainer: nothing to prune on
        _trial.IntermediateValues.Add(value);
        _reported();
        if (state.EpochsCompleted < state.MaxEpochs && _pruner.ShouldPrune(_trial, _finished))
        {
            Pruned = true;
            control.ShouldStop = true;
            control.Reason = StopReason.Callback;
        }
    }

    private double? Map(TrainingState state, EpochResult epoch)
    {
        var metric = _options.Metric;
        if (metric == SweepMetric.LogLoss && epoch.ValidationLoss is double loss)
        {
            Name(SweepMetric.LogLoss.ToString(), higherIsBetter: false);
            return _options.Task == SweepTask.BinaryClassification ? loss / Math.Log(2) : loss;
        }
        if (epoch.ValidationMetric is not double value)
            return null;
        bool exact = (metric is SweepMetric.Accuracy or SweepMetric.MicroAccuracy && state.MetricName == "Accuracy")
            || (metric == SweepMetric.RootMeanSquaredError && state.MetricName == "RMSE");
        Name(exact ? metric.ToString() : state.MetricName, state.MetricHigherIsBetter);
        return value;
    }

    private void Name(string name, bool higherIsBetter)
    {
        _trial.IntermediateMetricName = name;
        _trial.IntermediateHigherIsBetter = higherIsBetter;
    }
}
