using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// Augments the transfer set on the fly: each real word piece (not [CLS]/[SEP]/padding) is replaced by [MASK] or by a random
/// word piece with the given probabilities. The teacher then scores the altered text, so the student learns from many more
/// (input, soft target) pairs than there are texts.
/// </summary>
internal sealed class TokenAugmenter
{
    private readonly double _mask;
    private readonly double _replace;
    private readonly long _maskId;
    private readonly long[] _specialIds;
    private readonly long _vocabularySize;
    private readonly Generator _generator;

    public TokenAugmenter(double mask, double replace, int maskId, IEnumerable<int> specialIds, int vocabularySize, Generator generator)
    {
        _mask = mask;
        _replace = replace;
        _maskId = maskId;
        _specialIds = specialIds.Select(i => (long)i).ToArray();
        _vocabularySize = vocabularySize;
        _generator = generator;
    }

    /// <summary>An augmented copy of a packed token batch [N, 3, L].</summary>
    public Tensor Apply(Tensor packed)
    {
        using var scope = NewDisposeScope();
        var ids = packed.select(1, 0);
        var real = packed.select(1, 1).gt(0);
        foreach (long special in _specialIds)
            real = real.logical_and(ids.ne(special));
        var draw = torch.rand(ids.shape, generator: _generator).to(ids.device);
        var masked = draw.lt(_mask).logical_and(real);
        var replaced = draw.ge(_mask).logical_and(draw.lt(_mask + _replace)).logical_and(real);
        var random = torch.randint(0, _vocabularySize, ids.shape, generator: _generator, dtype: ScalarType.Int64).to(ids.device);
        var newIds = torch.where(masked, torch.full_like(ids, _maskId), ids);
        newIds = torch.where(replaced, random, newIds);
        return torch.stack(new[] { newIds, packed.select(1, 1), packed.select(1, 2) }, 1).MoveToOuterDisposeScope();
    }
}
