namespace MLExtensions.Core;

/// <summary>
/// The number format in which a network's matrix products and convolutions run during training.
/// Master weights, optimizer state, gradients, losses and normalization statistics stay float32 in every mode.
/// </summary>
public enum TrainingPrecision
{
    /// <summary>Everything in float32 (the default).</summary>
    Float32,

    /// <summary>
    /// Linear layers, convolutions and attention products in bfloat16 (same exponent range as float32, 8-bit
    /// mantissa), no loss scaling needed. Fast where the CPU has native bfloat16 (AVX-512 BF16, AMX); emulated and
    /// slower elsewhere (a warning says so).
    /// </summary>
    BFloat16,

    /// <summary>
    /// Linear layers, convolutions and attention products in float16 with dynamic loss scaling
    /// (<see cref="NetworkTrainerOptions.LossScaling"/>). Correct, but CPUs have no fast float16 kernels: on this
    /// library's CPU builds it is far slower than float32. It exists for parity with accelerators.
    /// </summary>
    Float16,

    /// <summary>bfloat16 where the CPU has native bfloat16 instructions, else float32; the choice is logged.</summary>
    Auto,
}
