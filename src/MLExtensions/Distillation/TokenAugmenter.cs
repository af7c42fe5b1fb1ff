using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// Augments the transfer set on the fly. Each real word piece (not [CLS]/[SEP]/padding) is replaced by [MASK] or by another word
/// piece with the given probabilities; the replacement is either any word piece, or one of the piece's nearest neighbours in the
/// teacher's word-embedding space (TinyBERT's augmentation, with the teacher's own embeddings as the similarity source so nothing
/// is downloaded). Optionally a text is first cut to a random contiguous span of its word pieces (the n-gram sampling of Tang et
/// al., 2019). The teacher then scores the altered text, so the student learns from many more (input, soft target) pairs than
/// there are texts.
/// </summary>
internal sealed class TokenAugmenter : IDisposable
{
    private readonly TokenAugmentation _settings;
    private readonly long _maskId;
    private readonly long[] _specialIds;
    private readonly long _vocabularySize;
    private readonly Generator _generator;
    private readonly NearestWordPieces? _neighbours;

    public TokenAugmenter(TokenAugmentation settings, int maskId, IEnumerable<int> specialIds, int vocabularySize, NearestWordPieces? neighbours,
        Generator generator)
    {
        _settings = settings;
        _maskId = maskId;
        _specialIds = specialIds.Select(i => (long)i).ToArray();
        _vocabularySize = vocabularySize;
        _neighbours = neighbours;
        _generator = generator;
    }

    /// <summary>An augmented copy of a packed token batch [N, 3, L] (ids, attention mask, token types).</summary>
    public Tensor Apply(Tensor packed)
    {
        using var scope = NewDisposeScope();
        if (_settings.SpanProbability > 0)
            packed = SampleSpans(packed);
        var ids = packed.select(1, 0);
        var real = packed.select(1, 1).gt(0);
        foreach (long special in _specialIds)
            real = real.logical_and(ids.ne(special));
        var draw = torch.rand(ids.shape, generator: _generator).to(ids.device);
        double mask = _settings.MaskProbability, replace = _settings.ReplacementProbability;
        var masked = draw.lt(mask).logical_and(real);
        var replaced = draw.ge(mask).logical_and(draw.lt(mask + replace)).logical_and(real);
        var newIds = torch.where(masked, torch.full_like(ids, _maskId), ids);
        if (replace > 0)
            newIds = torch.where(replaced, Replacements(ids), newIds);
        return torch.stack(new[] { newIds, packed.select(1, 1), packed.select(1, 2) }, 1).MoveToOuterDisposeScope();
    }

    public void Dispose() => _neighbours?.Dispose();

    /// <summary>A candidate replacement for every position: a random word piece, or a random one of its nearest neighbours.</summary>
    private Tensor Replacements(Tensor ids)
    {
        if (_neighbours is null)
            return torch.randint(0, _vocabularySize, ids.shape, generator: _generator, dtype: ScalarType.Int64).to(ids.device);
        // The table stays on the CPU; only the chosen ids travel to the batch's device.
        var cpuIds = ids.cpu();
        var table = _neighbours.For(cpuIds);                                 // [V, k] rows filled for every id in this batch
        var choice = torch.randint(0, table.shape[1], ids.shape, generator: _generator, dtype: ScalarType.Int64);
        var candidates = table.index_select(0, cpuIds.flatten()).view(ids.shape[0], ids.shape[1], table.shape[1]);
        return candidates.gather(2, choice.unsqueeze(-1)).squeeze(-1).to(ids.device);
    }

    /// <summary>
    /// Cuts each text, with the span probability, to a random contiguous run of its word pieces between [CLS] and [SEP]: the span
    /// length is uniform between 1 and all of them, its start uniform among the positions where it fits. The result is re-packed as
    /// [CLS] span [SEP] padding, with the same batch length.
    /// </summary>
    private Tensor SampleSpans(Tensor packed)
    {
        long n = packed.shape[0], length = packed.shape[2];
        var draws = torch.rand(new long[] { n, 3 }, generator: _generator).data<float>().ToArray();
        var cpu = packed.cpu().contiguous();
        long[] ids = Channel(cpu, 0), mask = Channel(cpu, 1), types = Channel(cpu, 2);
        // Rows that stay whole keep these copies; a cut row is cleared and rewritten.
        long[] newIds = (long[])ids.Clone(), newMask = (long[])mask.Clone();
        for (long row = 0; row < n; row++)
        {
            long offset = row * length;
            long real = 0;
            while (real < length && mask[offset + real] > 0)
                real++;
            long pieces = real - 2; // between [CLS] and [SEP]
            // Pairs of texts (token type 1 present) keep their structure: cutting one could drop the other.
            bool pair = Enumerable.Range(0, (int)real).Any(i => types[offset + i] != 0);
            if (draws[row * 3] >= _settings.SpanProbability || pieces <= 1 || pair)
                continue;
            long span = 1 + Math.Min(pieces - 1, (long)(draws[row * 3 + 1] * pieces));
            long start = 1 + Math.Min(pieces - span, (long)(draws[row * 3 + 2] * (pieces - span + 1)));
            Array.Clear(newIds, (int)(offset + 1), (int)(real - 1));
            Array.Clear(newMask, (int)(offset + span + 2), (int)(real - span - 2));
            Array.Copy(ids, offset + start, newIds, offset + 1, span);          // [CLS] at offset stays
            newIds[offset + span + 1] = ids[offset + real - 1];                 // [SEP]
        }
        var shape = new[] { n, length };
        // Token types are all 0 in every cut row (pairs are never cut), so the original channel serves unchanged.
        return torch.stack(new[] { torch.tensor(newIds, shape), torch.tensor(newMask, shape), torch.tensor(types, shape) }, 1).to(packed.device);
    }

    private static long[] Channel(Tensor packed, int channel) => packed.select(1, channel).contiguous().data<long>().ToArray();
}

/// <summary>What <see cref="TokenAugmenter"/> does to each text.</summary>
internal sealed record TokenAugmentation(double MaskProbability, double ReplacementProbability, double SpanProbability);

/// <summary>
/// The k nearest word pieces of each word piece by cosine similarity of a word-embedding table, computed on first use for the ids
/// a batch holds (a transfer set touches a fraction of a 30,000-piece vocabulary, and the full table would cost a V × V product).
/// Candidates exclude the excluded ids (special and unused pieces) and the piece itself.
/// </summary>
internal sealed class NearestWordPieces : IDisposable
{
    private readonly Tensor _unitEmbeddings; // [V, d], rows of unit length
    private readonly Tensor _excluded;       // [V] bool
    private readonly Tensor _table;          // [V, k]
    private readonly bool[] _known;
    private readonly int _k;

    public NearestWordPieces(Tensor wordEmbeddings, int k, IEnumerable<int> excludedIds)
    {
        // The tables live as long as this object, so no dispose scope of the caller may own them.
        using var scope = NewDisposeScope();
        long vocabulary = wordEmbeddings.shape[0];
        if (k < 1 || k >= vocabulary)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"The neighbour count must be between 1 and the vocabulary size − 1 = {vocabulary - 1}; found {k}.");
        _k = k;
        _unitEmbeddings = nn.functional.normalize(wordEmbeddings.detach().to(ScalarType.Float32).cpu(), dim: 1).DetachFromDisposeScope();
        var excluded = new bool[vocabulary];
        foreach (int id in excludedIds)
            excluded[id] = true;
        _excluded = torch.tensor(excluded).DetachFromDisposeScope();
        _table = torch.zeros(new[] { vocabulary, (long)k }, ScalarType.Int64).DetachFromDisposeScope();
        _known = new bool[vocabulary];
    }

    /// <summary>The neighbour table [V, k] (on the CPU), with the rows of every id in <paramref name="ids"/> filled.</summary>
    public Tensor For(Tensor ids)
    {
        var missing = ids.cpu().flatten().data<long>().Distinct().Where(id => !_known[id]).ToArray();
        // Chunks bound the [chunk, V] similarity matrix (512 × 30,522 floats ≈ 62 MB).
        foreach (var chunk in missing.Chunk(512))
        {
            using var scope = NewDisposeScope();
            var rows = torch.tensor(chunk);
            var similarity = _unitEmbeddings.index_select(0, rows).matmul(_unitEmbeddings.t());
            similarity = similarity.masked_fill(_excluded.unsqueeze(0), float.NegativeInfinity);
            similarity.scatter_(1, rows.unsqueeze(1), torch.full(new long[] { chunk.Length, 1 }, float.NegativeInfinity));
            var (_, nearest) = similarity.topk(_k, dim: 1);
            _table.index_copy_(0, rows, nearest);
            foreach (long id in chunk)
                _known[id] = true;
        }
        return _table;
    }

    public void Dispose()
    {
        _unitEmbeddings.Dispose();
        _excluded.Dispose();
        _table.Dispose();
    }
}
