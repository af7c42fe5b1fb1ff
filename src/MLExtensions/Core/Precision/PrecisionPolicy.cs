using Microsoft.ML.Runtime;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// What the training loop does differently for a <see cref="TrainingPrecision"/>: it resolves
/// <see cref="TrainingPrecision.Auto"/> (and logs why), attaches <see cref="Autocast"/> to the network for the run,
/// opens the autocast scope around forward passes and, for float16, scales the loss and decides whether a step is taken.
/// The loop calls it at four points: forward, backward, before the optimizer step, and disposal at the end.
/// </summary>
internal sealed class PrecisionPolicy : IDisposable
{
    private readonly List<IDisposable> _hooks = new();

    private PrecisionPolicy(TrainingPrecision precision, IEnumerable<nn.Module> networks, LossScalingOptions lossScaling)
    {
        Precision = precision;
        LowType = precision switch
        {
            TrainingPrecision.BFloat16 => ScalarType.BFloat16,
            TrainingPrecision.Float16 => ScalarType.Float16,
            _ => null,
        };
        if (LowType is not null)
            _hooks.AddRange(networks.Select(Autocast.Attach));
        if (precision == TrainingPrecision.Float16)
            Scaler = new LossScaler(lossScaling);
    }

    /// <summary>The precision in force (never <see cref="TrainingPrecision.Auto"/>).</summary>
    public TrainingPrecision Precision { get; }

    /// <summary>The autocast type, or null for float32.</summary>
    public ScalarType? LowType { get; }

    /// <summary>The float16 loss scaler; null for the other precisions.</summary>
    public LossScaler? Scaler { get; }

    /// <summary>Resolves <paramref name="requested"/> for this CPU, logs the choice, and prepares <paramref name="networks"/>.</summary>
    public static PrecisionPolicy Create(TrainingPrecision requested, LossScalingOptions lossScaling, IEnumerable<nn.Module> networks, IChannel channel)
    {
        var resolved = Resolve(requested, CpuPrecisionSupport.NativeBFloat16Feature, out string reason);
        if (requested != TrainingPrecision.Float32)
            channel.Info(MessageSensitivity.None, "Training precision {0}: {1}.", resolved, reason);
        if (resolved == TrainingPrecision.BFloat16 && !CpuPrecisionSupport.HasNativeBFloat16)
            channel.Warning(MessageSensitivity.None,
                "Precision BFloat16 on a CPU without native bfloat16 (neither avx512_bf16 nor amx_bf16 in its flags): bfloat16 is emulated and training is slower than Float32. Use Auto or Float32 here.");
        if (resolved == TrainingPrecision.Float16)
            channel.Warning(MessageSensitivity.None,
                "Precision Float16 on a CPU: libtorch has no fast float16 CPU kernels, so training is much slower than Float32 (about 150× for a matrix product). Prefer BFloat16.");
        return new PrecisionPolicy(resolved, networks, lossScaling);
    }

    /// <summary>The precision <paramref name="requested"/> means on a CPU with <paramref name="nativeBFloat16Feature"/> (null: none), and why.</summary>
    internal static TrainingPrecision Resolve(TrainingPrecision requested, string? nativeBFloat16Feature, out string reason)
    {
        switch (requested)
        {
            case TrainingPrecision.Auto when nativeBFloat16Feature is not null:
                reason = $"Auto chose bfloat16 because the CPU has native bfloat16 ({nativeBFloat16Feature})";
                return TrainingPrecision.BFloat16;
            case TrainingPrecision.Auto:
                reason = "Auto chose float32 because the CPU has no native bfloat16 (neither avx512_bf16 nor amx_bf16)";
                return TrainingPrecision.Float32;
            default:
                reason = $"{requested} as requested";
                return requested;
        }
    }

    /// <summary>Opens the autocast scope for one forward pass (a no-op scope for float32).</summary>
    public IDisposable EnterForward() => Autocast.Enter(LowType);

    /// <summary>The loss to call backward on: scaled for float16, unchanged otherwise.</summary>
    public Tensor LossForBackward(Tensor loss) => Scaler?.ScaleLoss(loss) ?? loss;

    /// <summary>
    /// Called with the accumulated gradients before clipping: unscales them for float16 and returns false when the
    /// step must be skipped (non-finite gradients). Always true for the other precisions. Also drops the low-precision
    /// weight copies that forward passes without gradients kept.
    /// </summary>
    public bool BeforeStep(IEnumerable<Tensor> parameters)
    {
        if (LowType is not null)
            Autocast.InvalidateWeightCopies(); // the step changes the weights that validation passes cast and kept
        return Scaler?.UnscaleAndDecide(parameters) ?? true;
    }

    /// <summary>Removes the autocast hooks: the trained network is a plain float32 network again.</summary>
    public void Dispose()
    {
        foreach (var hooks in _hooks)
            hooks.Dispose();
        _hooks.Clear();
    }
}
