namespace MLExtensions.Core;

/// <summary>
/// Hooks into the training loop. Order per run: <see cref="OnTrainBegin"/>; per epoch <see cref="OnEpochBegin"/>,
/// <see cref="OnBatchEnd"/> after every optimizer batch, <see cref="OnEpochEnd"/> after validation;
/// finally <see cref="OnTrainEnd"/>, which runs however training ended (also after cancellation or an error).
/// Callbacks read <see cref="TrainingState"/> and steer only through <see cref="TrainingControl"/>.
/// </summary>
public interface ITrainingCallback
{
    /// <summary>Before the first epoch (after a checkpoint was restored, if any).</summary>
    void OnTrainBegin(TrainingRun run) { }

    /// <summary>Before each epoch.</summary>
    void OnEpochBegin(TrainingRun run) { }

    /// <summary>After each batch of training.</summary>
    void OnBatchEnd(TrainingRun run, BatchResult batch) { }

    /// <summary>After each epoch, once its <see cref="EpochResult"/> is in the history.</summary>
    void OnEpochEnd(TrainingRun run, TrainingControl control) { }

    /// <summary>When training ends, however it ended; <paramref name="error"/> is set when it ended by an exception.</summary>
    void OnTrainEnd(TrainingRun run, Exception? error) { }
}

/// <summary>What one training batch did.</summary>
/// <param name="BatchInEpoch">1-based batch index within the epoch.</param>
/// <param name="Rows">Rows in the batch.</param>
/// <param name="Loss">The batch's loss.</param>
/// <param name="MeanLoss">Mean loss of the epoch so far.</param>
/// <param name="SamplesPerSecond">Throughput of the epoch so far.</param>
/// <param name="LearningRate">Learning rate used for the step.</param>
public readonly record struct BatchResult(int BatchInEpoch, int Rows, double Loss, double MeanLoss, double SamplesPerSecond, double LearningRate);
