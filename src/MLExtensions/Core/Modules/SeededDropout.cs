using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Inverted dropout that draws its mask from a given <see cref="Generator"/> instead of libtorch's global one.
/// </summary>
/// <remarks>
/// libtorch's dropout uses the process-wide generator, so two trainings running at once (or anything else
/// drawing random numbers) would change each other's results. With a per-run generator, training is
/// deterministic for a fixed seed and a checkpoint can restore the generator exactly.
/// In training mode each element is kept with probability 1 − p and scaled by 1 / (1 − p); in evaluation
/// mode the layer is the identity.
/// </remarks>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    private readonly double _probability;
    private readonly Generator _generator;

    /// <summary>Creates the layer.</summary>
    /// <param name="probability">Probability of zeroing an element, in [0, 1).</param>
    /// <param name="generator">Source of the masks.</param>
    public SeededDropout(double probability, Generator generator) : base(nameof(SeededDropout))
    {
        if (probability < 0 || probability >= 1)
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Dropout probability must be in [0, 1).");
        _probability = probability;
        _generator = generator;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (!training || _probability == 0)
            return input.alias();
        using var scope = torch.NewDisposeScope();
        // The mask is drawn in float32 whatever the input's type, and applied as a boolean (which keeps the input's type): a
        // bfloat16 activation under autocast gets the same masks as float32 training from the same generator, and the
        // float32 result is the same as multiplying by a 0/1 float mask.
        var keep = torch.rand(input.shape, ScalarType.Float32, input.device, false, _generator).ge(_probability);
        return (input * keep).div_(1 - _probability).MoveToOuterDisposeScope();
    }
}
