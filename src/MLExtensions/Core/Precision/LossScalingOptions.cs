namespace MLExtensions.Core;

/// <summary>
/// Dynamic loss scaling for <see cref="TrainingPrecision.Float16"/> (the rule of PyTorch's <c>GradScaler</c>):
/// the loss is multiplied by the scale before backward, gradients are divided by it before the optimizer step; a step
/// whose gradients hold an infinity or NaN is skipped and the scale multiplied by <see cref="BackoffFactor"/>; after
/// <see cref="GrowthInterval"/> consecutive finite steps the scale is multiplied by <see cref="GrowthFactor"/>.
/// Ignored by the other precisions (bfloat16 has float32's exponent range and needs no scaling).
/// </summary>
public sealed class LossScalingOptions
{
    /// <summary>Scale of the first step, &gt; 0. Default 2^16.</summary>
    public double InitialScale { get; set; } = 65536;

    /// <summary>Factor applied after <see cref="GrowthInterval"/> finite steps, &gt; 1. Default 2.</summary>
    public double GrowthFactor { get; set; } = 2;

    /// <summary>Factor applied after a step with non-finite gradients, in (0, 1). Default 0.5.</summary>
    public double BackoffFactor { get; set; } = 0.5;

    /// <summary>Consecutive finite steps before the scale grows, ≥ 1. Default 2,000.</summary>
    public int GrowthInterval { get; set; } = 2000;

    internal void Validate()
    {
        Check.Positive(InitialScale, "LossScaling.InitialScale");
        Check.InRange(GrowthFactor, 1 + 1e-9, double.MaxValue, "LossScaling.GrowthFactor", "a finite number > 1");
        Check.InRange(BackoffFactor, 1e-9, 1 - 1e-9, "LossScaling.BackoffFactor", "in (0, 1)");
        Check.Positive(GrowthInterval, "LossScaling.GrowthInterval");
    }
}
