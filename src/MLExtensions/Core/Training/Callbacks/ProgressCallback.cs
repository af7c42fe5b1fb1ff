using Microsoft.ML.Runtime;
namespace MLExtensions.Core;

/// <summary>Reports progress to the ML.NET channel (visible through <c>MLContext.Log</c>) and to an <see cref="IProgress{T}"/>.</summary>
internal sealed class ProgressCallback : ITrainingCallback
{
    private readonly IProgress<TrainingProgress>? _progress;
    private readonly int _interval;
    private BatchResult _last;

    public ProgressCallback(IProgress<TrainingProgress>? progress, int interval)
    {
        _progress = progress;
        _interval = interval;
    }

    public void OnTrainBegin(TrainingRun run)
    {
        int parameters = run.Task.ParameterGroups().Sum(g => g.Parameters.Sum(p => (int)p.numel()));
        run.Channel.Info(MessageSensitivity.None, "Training {0} trainable parameters on {1} for up to {2} epochs ({3} optimizer steps per epoch).",
            parameters, run.Device.type, run.Options.Epochs, run.State.StepsPerEpoch);
    }

    public void OnBatchEnd(TrainingRun run, BatchResult batch)
    {
        _last = batch;
        if (batch.BatchInEpoch % _interval != 0)
            return;
        var state = run.State;
        _progress?.Report(new TrainingProgress(TrainingPhase.Batch, state.EpochsCompleted + 1, state.MaxEpochs, state.Step, batch.BatchInEpoch,
            BatchesPerEpoch(run), batch.MeanLoss, null, state.MetricName, null, batch.SamplesPerSecond, batch.LearningRate, state.SkippedSteps));
    }

    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        var state = run.State;
        var e = state.History[^1];
        if (e.ValidationLoss is double validationLoss)
            run.Channel.Info(MessageSensitivity.None, "Epoch {0}/{1}: training loss {2:F4}, validation loss {3:F4}, validation {4} {5:F4}, {6:F0} samples/s.",
                e.Epoch, state.MaxEpochs, e.TrainingLoss, validationLoss, state.MetricName, e.ValidationMetric, e.SamplesPerSecond);
        else
            run.Channel.Info(MessageSensitivity.None, "Epoch {0}/{1}: training loss {2:F4}, {3:F0} samples/s.", e.Epoch, state.MaxEpochs, e.TrainingLoss, e.SamplesPerSecond);
        if (e.SkippedSteps > 0)
            run.Channel.Info(MessageSensitivity.None, "Epoch {0}: float16 loss scaling skipped {1} steps with non-finite gradients; loss scale now {2}.",
                e.Epoch, e.SkippedSteps, state.LossScale);
        _progress?.Report(new TrainingProgress(TrainingPhase.EpochEnd, e.Epoch, state.MaxEpochs, state.Step, _last.BatchInEpoch, BatchesPerEpoch(run),
            e.TrainingLoss, e.ValidationLoss, state.MetricName, e.ValidationMetric, e.SamplesPerSecond, _last.LearningRate, state.SkippedSteps));
    }

    public void OnTrainEnd(TrainingRun run, Exception? error)
    {
        if (error is not null || run.State.History.Count == 0)
            return;
        var state = run.State;
        var best = state.BestEpoch > 0 ? state.History[state.BestEpoch - 1] : state.History[^1];
        run.Channel.Info(MessageSensitivity.None, "Training finished after {0} epochs ({1}); kept epoch {2}.", state.EpochsCompleted, state.StopReason, best.Epoch);
        _progress?.Report(new TrainingProgress(TrainingPhase.Completed, best.Epoch, state.MaxEpochs, state.Step, _last.BatchInEpoch, BatchesPerEpoch(run),
            best.TrainingLoss, best.ValidationLoss, state.MetricName, best.ValidationMetric, best.SamplesPerSecond, _last.LearningRate, state.SkippedSteps));
    }

    private static int? BatchesPerEpoch(TrainingRun run) =>
        run.State.StepsPerEpoch > 0 ? (int)(run.State.StepsPerEpoch * run.Options.GradientAccumulationSteps) : null;
}
