namespace MLExtensions.Core;

/// <summary>
/// The number format in which a fitted network transformer computes its Linear layers, convolutions and attention
/// products when it scores (the weights stay float32 in memory and in the saved model).
/// </summary>
public enum ScoringPrecision
{
    /// <summary>Everything in float32 (the default): scores identical to the trained network's.</summary>
    Float32,

    /// <summary>
    /// Products in bfloat16 (the same split as <see cref="TrainingPrecision.BFloat16"/>): faster where the CPU has native
    /// bfloat16, scores within bfloat16 tolerance (about 3 significant digits) of float32.
    /// </summary>
    BFloat16,
}
