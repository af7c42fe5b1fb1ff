namespace MLExtensions.Core;

/// <summary>Where in training a <see cref="TrainingProgress"/> report was made.</summary>
public enum TrainingPhase
{
    /// <summary>During an epoch, after a batch.</summary>
    Batch,

    /// <summary>At the end of an epoch, after validation.</summary>
    EpochEnd,

    /// <summary>Once, when training has finished.</summary>
    Completed,
}

/// <summary>A progress report from the training loop.</summary>
/// <param name="Phase">Where in training the report was made.</param>
/// <param name="Epoch">The epoch, 1-based.</param>
/// <param name="TotalEpochs">The configured maximum number of epochs.</param>
/// <param name="Step">Optimizer steps taken so far in the whole run.</param>
/// <param name="BatchInEpoch">Batches done in the current epoch.</param>
/// <param name="BatchesPerEpoch">Batches per epoch, when known.</param>
/// <param name="TrainingLoss">Mean training loss over the epoch so far.</param>
/// <param name="ValidationLoss">Validation loss of the epoch (end-of-epoch reports with validation only).</param>
/// <param name="MetricName">Name of the validation metric, e.g. "Accuracy" or "RMSE".</param>
/// <param name="ValidationMetric">Validation metric of the epoch (end-of-epoch reports with validation only).</param>
/// <param name="SamplesPerSecond">Training throughput over the epoch so far.</param>
/// <param name="LearningRate">Learning rate of the first parameter group at the last step.</param>
/// <param name="SkippedSteps">Optimizer steps skipped so far by float16 loss scaling (non-finite gradients); 0 in the other precisions.</param>
public sealed record TrainingProgress(
    TrainingPhase Phase,
    int Epoch,
    int TotalEpochs,
    long Step,
    int BatchInEpoch,
    int? BatchesPerEpoch,
    double TrainingLoss,
    double? ValidationLoss,
    string MetricName,
    double? ValidationMetric,
    double SamplesPerSecond,
    double LearningRate,
    long SkippedSteps = 0);
