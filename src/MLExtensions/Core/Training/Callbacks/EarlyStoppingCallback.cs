using Microsoft.ML.Runtime;
namespace MLExtensions.Core;

/// <summary>
/// Tracks the best validation epoch, stops after <see cref="EarlyStoppingOptions.Patience"/> epochs without
/// improvement and restores the best weights when training ends, however it ended.
/// </summary>
/// <remarks>
/// The monitored value is the validation loss by default: it is smooth and defined for every task, unlike accuracy
/// on a small validation split, which plateaus. <see cref="EarlyStoppingMonitor.ValidationMetric"/> watches the task's
/// metric instead. Internally every monitored value is turned into "lower is better". The best epoch is tracked even
/// when early stopping is disabled, so <see cref="EarlyStoppingOptions.RestoreBestWeights"/> still applies.
/// </remarks>
internal sealed class EarlyStoppingCallback : ITrainingCallback
{
    private readonly EarlyStoppingOptions _options;

    public EarlyStoppingCallback(EarlyStoppingOptions options) => _options = options;

    /// <summary>Best monitored value so far, as "lower is better".</summary>
    public double Best { get; private set; } = double.PositiveInfinity;

    /// <summary>Validated epochs since the last improvement.</summary>
    public int Wait { get; private set; }

    /// <summary>Weights of the best epoch.</summary>
    public WeightSnapshot? BestWeights { get; private set; }

    /// <summary>Replaces the state with one read from a checkpoint.</summary>
    internal void Restore(double best, int wait, WeightSnapshot? bestWeights)
    {
        Best = best;
        Wait = wait;
        BestWeights?.Dispose();
        BestWeights = bestWeights;
    }

    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        var last = run.State.History[^1];
        double? monitored = _options.Monitor == EarlyStoppingMonitor.ValidationMetric
            ? (run.State.MetricHigherIsBetter ? -last.ValidationMetric : last.ValidationMetric)
            : last.ValidationLoss;
        if (monitored is not double loss)
            return;
        if (loss < Best - _options.MinDelta)
        {
            Best = loss;
            Wait = 0;
            run.State.BestEpoch = last.Epoch;
            if (_options.RestoreBestWeights)
            {
                BestWeights?.Dispose();
                BestWeights = WeightSnapshot.Take(run.Task.Network);
            }
            return;
        }
        Wait++;
        if (_options.Enabled && Wait >= _options.Patience)
        {
            control.ShouldStop = true;
            control.Reason = StopReason.EarlyStopping;
            run.Channel.Info(MessageSensitivity.None, "Early stopping after epoch {0}: the validation {1} has not improved for {2} epochs (best in epoch {3}).",
                last.Epoch, MonitorName(run), Wait, run.State.BestEpoch);
        }
    }

    private string MonitorName(TrainingRun run) => _options.Monitor == EarlyStoppingMonitor.ValidationMetric ? run.State.MetricName : "loss";

    public void OnTrainEnd(TrainingRun run, Exception? error)
    {
        if (BestWeights is null)
            return;
        if (run.State.BestEpoch != run.State.EpochsCompleted)
        {
            BestWeights.RestoreInto(run.Task.Network);
            run.Channel.Info(MessageSensitivity.None, "Restored the weights of epoch {0} (best validation {1}).", run.State.BestEpoch, MonitorName(run));
        }
        BestWeights.Dispose();
        BestWeights = null;
    }
}
