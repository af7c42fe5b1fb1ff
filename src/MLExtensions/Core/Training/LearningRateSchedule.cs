namespace MLExtensions.Core;

/// <summary>How the learning rate changes over the course of training.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>The learning rate stays at <see cref="OptimizerOptions.LearningRate"/>.</summary>
    Constant,

    /// <summary>Multiplied by <see cref="LearningRateScheduleOptions.StepGamma"/> every <see cref="LearningRateScheduleOptions.StepEpochs"/> epochs.</summary>
    Step,

    /// <summary>Cosine annealing from the peak to <see cref="LearningRateScheduleOptions.MinimumFactor"/> × peak over all steps.</summary>
    Cosine,

    /// <summary>Linear warm-up from 0 to the peak, then linear decay to <see cref="LearningRateScheduleOptions.MinimumFactor"/> × peak.</summary>
    WarmupLinear,

    /// <summary>Linear warm-up from 0 to the peak, then cosine decay to <see cref="LearningRateScheduleOptions.MinimumFactor"/> × peak.</summary>
    WarmupCosine,
}

/// <summary>Learning-rate schedule settings. The schedule is a pure function of the optimizer step, so a resumed run follows it exactly.</summary>
public sealed class LearningRateScheduleOptions
{
    /// <summary>The schedule. Default <see cref="LearningRateScheduleKind.Constant"/>.</summary>
    public LearningRateScheduleKind Kind { get; set; } = LearningRateScheduleKind.Constant;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: epochs between decays, ≥ 1. Default 10.</summary>
    public int StepEpochs { get; set; } = 10;

    /// <summary>For <see cref="LearningRateScheduleKind.Step"/>: decay factor in (0, 1]. Default 0.1.</summary>
    public double StepGamma { get; set; } = 0.1;

    /// <summary>For the warm-up schedules: fraction of all optimizer steps spent warming up, in [0, 1). Default 0.1.</summary>
    public double WarmupFraction { get; set; } = 0.1;

    /// <summary>For the decaying schedules: final learning rate as a fraction of the peak, in [0, 1]. Default 0.</summary>
    public double MinimumFactor { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (StepEpochs < 1)
            throw new ArgumentOutOfRangeException("LearningRateSchedule.StepEpochs", StepEpochs, "Must be ≥ 1.");
        Check.InRange(StepGamma, double.Epsilon, 1, "LearningRateSchedule.StepGamma", "in (0, 1]");
        Check.InRange(WarmupFraction, 0, 0.999999, "LearningRateSchedule.WarmupFraction", "in [0, 1)");
        Check.InRange(MinimumFactor, 0, 1, "LearningRateSchedule.MinimumFactor", "in [0, 1]");
    }

    /// <summary>
    /// The multiplier applied to each parameter group's base learning rate at optimizer step
    /// <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>, in epoch <paramref name="epoch"/>.
    /// </summary>
    public double Factor(long step, long totalSteps, int epoch)
    {
        totalSteps = Math.Max(1, totalSteps);
        double progress = Math.Clamp((double)step / totalSteps, 0, 1);
        switch (Kind)
        {
            case LearningRateScheduleKind.Constant:
                return 1;
            case LearningRateScheduleKind.Step:
                return Math.Pow(StepGamma, epoch / StepEpochs);
            case LearningRateScheduleKind.Cosine:
                return Cosine(progress);
            case LearningRateScheduleKind.WarmupLinear:
            case LearningRateScheduleKind.WarmupCosine:
                long warmupSteps = (long)Math.Round(WarmupFraction * totalSteps);
                if (step < warmupSteps)
                    return (step + 1.0) / warmupSteps;
                double decay = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
                decay = Math.Clamp(decay, 0, 1);
                return Kind == LearningRateScheduleKind.WarmupLinear
                    ? MinimumFactor + (1 - MinimumFactor) * (1 - decay)
                    : Cosine(decay);
            default:
                throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown learning-rate schedule.");
        }
    }

    private double Cosine(double progress) => MinimumFactor + (1 - MinimumFactor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
}
