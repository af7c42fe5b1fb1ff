namespace MLExtensions.Core;

/// <summary>What happened in one epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainingLoss">Mean training loss.</param>
/// <param name="ValidationLoss">Mean validation loss, when validated.</param>
/// <param name="ValidationMetric">Validation metric, when validated.</param>
/// <param name="Seconds">Wall time of the epoch's training part.</param>
/// <param name="SamplesPerSecond">Training throughput.</param>
/// <param name="SkippedSteps">Optimizer steps skipped in this epoch because float16 loss scaling found non-finite gradients.</param>
public sealed record EpochResult(int Epoch, double TrainingLoss, double? ValidationLoss, double? ValidationMetric, double Seconds, double SamplesPerSecond,
    long SkippedSteps = 0);

/// <summary>Why training ended.</summary>
public enum StopReason
{
    /// <summary>Ran all configured epochs.</summary>
    MaxEpochs,

    /// <summary>Early stopping: the monitored value did not improve for <see cref="EarlyStoppingOptions.Patience"/> epochs.</summary>
    EarlyStopping,

    /// <summary>A callback asked to stop.</summary>
    Callback,
}

/// <summary>The training loop's state, read by callbacks. Only the loop changes it.</summary>
public sealed class TrainingState
{
    /// <summary>Epochs completed (0 before the first).</summary>
    public int EpochsCompleted { get; internal set; }

    /// <summary>Optimizer steps taken.</summary>
    public long Step { get; internal set; }

    /// <summary>The configured maximum number of epochs.</summary>
    public int MaxEpochs { get; internal set; }

    /// <summary>Optimizer steps per epoch (known after the data was read).</summary>
    public long StepsPerEpoch { get; internal set; }

    /// <summary>One entry per completed epoch.</summary>
    public List<EpochResult> History { get; internal set; } = new();

    /// <summary>Name of the validation metric.</summary>
    public string MetricName { get; internal set; } = "";

    /// <summary>Whether larger values of the validation metric are better.</summary>
    public bool MetricHigherIsBetter { get; internal set; }

    /// <summary>Whether the run has validation data.</summary>
    public bool HasValidation { get; internal set; }

    /// <summary>The best epoch so far (1-based), as judged by early stopping; 0 when none.</summary>
    public int BestEpoch { get; internal set; }

    /// <summary>
    /// Wall time this rank spent adding gradients over the ranks (data-parallel training); 0 in single-process training.
    /// </summary>
    public double CommunicationSeconds { get; internal set; }

    /// <summary>The precision the run trains in (<see cref="TrainingPrecision.Auto"/> already resolved for this CPU).</summary>
    public TrainingPrecision Precision { get; internal set; }

    /// <summary>Optimizer steps skipped so far because float16 loss scaling found non-finite gradients (0 otherwise).</summary>
    public long SkippedSteps { get; internal set; }

    /// <summary>The current float16 loss scale; null for the other precisions.</summary>
    public double? LossScale { get; internal set; }

    /// <summary>Why training ended (set at the end).</summary>
    public StopReason? StopReason { get; internal set; }
}

/// <summary>The only way a callback steers the loop.</summary>
public sealed class TrainingControl
{
    /// <summary>Set to stop after the current epoch.</summary>
    public bool ShouldStop { get; set; }

    /// <summary>The reason recorded when <see cref="ShouldStop"/> ends training.</summary>
    public StopReason Reason { get; set; } = StopReason.Callback;
}
