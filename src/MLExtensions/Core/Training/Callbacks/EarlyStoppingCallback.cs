using Microsoft.ML.Runtime;
namespace MLExtensions.Core;

/// <summary>
/// Tracks the best validation epoch, stops after <see cref="EarlyStoppingOptions.Patience"/> epochs without
/// improvement and restores the best weights when training ends, however it ended.
/// </summary>
/// <remarks>
/// The monitored value is the validation loss: it is smooth and defined for every task, unlike accuracy
/// on a small validation split, which plateaus. The best epoch is tracked even when early stopping is
/// disabled, so <see cref="EarlyStoppingOptions.RestoreBestWeights"/> still applies.
/// </remarks>
internal sealed class EarlyStoppingCallback : ITrainingCallback
{
    private readonly EarlyStoppingOptions _options;

    public EarlyStoppingCallback(EarlyStoppingOptions options) => _options = options;

    /// <summary>Best validation loss so far.</summary>
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
        if (last.ValidationLoss is not double loss)
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
            run.Channel.Info(MessageSensitivity.None, "Early stopping after epoch {0}: validation loss has not improved for {1} epochs (best {2:G5} in epoch {3}).",
                last.Epoch, Wait, Best, run.State.BestEpoch);
        }
    }

    public void OnTrainEnd(TrainingRun run, Exception? error)
    {
        if (BestWeights is null)
            return;
        if (run.State.BestEpoch != run.State.EpochsCompleted)
        {
            BestWeights.RestoreInto(run.Task.Network);
            run.Channel.Info(MessageSensitivity.None, "Restored the weights of epoch {0} (best validation loss {1:G5}).", run.State.BestEpoch, Best);
        }
        BestWeights.Dispose();
        BestWeights = null;
    }
}
