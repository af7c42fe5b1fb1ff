namespace MLExtensions.Core;

/// <summary>The validation value early stopping and best-epoch selection watch.</summary>
public enum EarlyStoppingMonitor
{
    /// <summary>The validation loss (smooth, defined for every task). Lower is better.</summary>
    ValidationLoss,

    /// <summary>
    /// The task's validation metric (accuracy, or RMSE for regression), in its own direction. Better for fine-tuning
    /// pretrained models, whose validation loss often rises (growing confidence) while accuracy still improves.
    /// </summary>
    ValidationMetric,
}

/// <summary>Stops training when the validation metric stops improving, and restores the best weights.</summary>
/// <remarks>
/// The best weights are restored at the end of training <em>however training ended</em> (stopped early,
/// ran out of epochs, or was cancelled after at least one validated epoch), so the fitted model is always
/// the best one seen on the validation data.
/// </remarks>
public sealed class EarlyStoppingOptions
{
    /// <summary>Whether early stopping is on. It needs validation data. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Epochs without improvement before stopping, ≥ 1. Patience counts validated epochs. Default 10.</summary>
    public int Patience { get; set; } = 10;

    /// <summary>Smallest change of the monitored metric that counts as an improvement, ≥ 0. Default 0.</summary>
    public double MinDelta { get; set; }

    /// <summary>What counts as "best". Default <see cref="EarlyStoppingMonitor.ValidationLoss"/>.</summary>
    public EarlyStoppingMonitor Monitor { get; set; } = EarlyStoppingMonitor.ValidationLoss;

    /// <summary>Restore the weights of the best epoch when training ends. Default true.</summary>
    public bool RestoreBestWeights { get; set; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Patience < 1)
            throw new ArgumentOutOfRangeException("EarlyStopping.Patience", Patience, "Must be ≥ 1.");
        Check.InRange(MinDelta, 0, double.MaxValue, "EarlyStopping.MinDelta", "≥ 0");
    }
}

/// <summary>Per-epoch checkpoints from which an interrupted training run resumes.</summary>
/// <remarks>
/// A checkpoint holds the weights, optimizer state, random-generator state, early-stopping state and
/// history, so resuming gives the same final weights as an uninterrupted run with the same seed and data.
/// Files are written atomically: an interruption leaves the previous checkpoint intact.
/// </remarks>
public sealed class CheckpointOptions
{
    /// <summary>Folder for checkpoint files; null disables checkpointing. Default null.</summary>
    public string? Directory { get; set; }

    /// <summary>Resume from the checkpoint in <see cref="Directory"/> when one exists. Default true.</summary>
    public bool ResumeIfPresent { get; set; } = true;
}
