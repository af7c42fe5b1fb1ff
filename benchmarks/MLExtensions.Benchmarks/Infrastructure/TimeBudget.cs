using System.Diagnostics;
using MLExtensions.Core;

namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>Stops training after the epoch in which the time budget ran out (so a run may exceed it by up to one epoch).</summary>
internal sealed class TimeBudget : ITrainingCallback
{
    private readonly TimeSpan _budget;
    private readonly Stopwatch _clock = new();

    public TimeBudget(TimeSpan budget) => _budget = budget;

    /// <summary>Training time so far (the epochs' training and validation, not data preparation).</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    public void OnTrainBegin(TrainingRun run) => _clock.Start();

    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        if (_clock.Elapsed >= _budget)
            control.ShouldStop = true;
    }

    public void OnTrainEnd(TrainingRun run, Exception? error) => _clock.Stop();
}
