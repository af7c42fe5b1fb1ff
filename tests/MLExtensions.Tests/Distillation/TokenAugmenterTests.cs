using MLExtensions.Core.Native;
using MLExtensions.Distillation;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Distillation;

/// <summary>Transfer-set augmentation on packed token batches: span sampling, nearest-neighbour replacement, masking.</summary>
public class TokenAugmenterTests
{
    private const int Cls = 2, Sep = 3, Mask = 4, Pad = 0;

    public TokenAugmenterTests() => TorchNativeLoader.EnsureLoaded();

    /// <summary>Packs rows of word-piece ids as [CLS] ids [SEP] padding, [N, 3, L] (ids, attention mask, token types).</summary>
    private static Tensor Pack(int length, params long[][] rows)
    {
        var ids = new long[rows.Length * length];
        var mask = new long[rows.Length * length];
        for (int r = 0; r < rows.Length; r++)
        {
            var text = new long[] { Cls }.Concat(rows[r]).Append(Sep).ToArray();
            for (int i = 0; i < text.Length; i++)
            {
                ids[r * length + i] = text[i];
                mask[r * length + i] = 1;
            }
        }
        var shape = new long[] { rows.Length, length };
        return torch.stack(new[] { torch.tensor(ids, shape), torch.tensor(mask, shape), torch.zeros(shape, ScalarType.Int64) }, 1);
    }

    private static long[] Row(Tensor packed, int row, int channel) => packed[row, channel].data<long>().ToArray();

    private static TokenAugmenter Augmenter(TokenAugmentation settings, NearestWordPieces? neighbours = null, int seed = 7) =>
        new(settings, Mask, new[] { Cls, Sep, Pad }, vocabularySize: 40, neighbours, new Generator((ulong)seed));

    [Fact]
    public void SpanSamplingKeepsAContiguousRunOfEachTextBetweenClsAndSep()
    {
        var texts = Enumerable.Range(0, 50).Select(r => Enumerable.Range(0, 3 + r % 9).Select(i => (long)(10 + i)).ToArray()).ToArray();
        using var packed = Pack(14, texts);
        using var augmenter = Augmenter(new TokenAugmentation(0, 0, SpanProbability: 1));

        using var result = augmenter.Apply(packed);

        Assert.Equal(packed.shape, result.shape);
        var lengths = new HashSet<int>();
        for (int r = 0; r < texts.Length; r++)
        {
            var ids = Row(result, r, 0);
            var mask = Row(result, r, 1);
            int real = mask.Count(m => m == 1);
            Assert.All(mask.Take(real), m => Assert.Equal(1, m));         // real tokens first, then padding
            Assert.All(ids.Skip(real), id => Assert.Equal(Pad, id));
            Assert.Equal(Cls, ids[0]);
            Assert.Equal(Sep, ids[real - 1]);
            var span = ids.Skip(1).Take(real - 2).ToArray();
            Assert.NotEmpty(span);
            // The original pieces are 10, 11, 12, …: a contiguous run is consecutive numbers inside the text's range.
            Assert.True(span.Zip(span.Skip(1)).All(p => p.Second == p.First + 1), $"row {r}: {string.Join(' ', span)}");
            Assert.InRange(span[0], 10, texts[r][^1]);
            Assert.InRange(span[^1], 10, texts[r][^1]);
            lengths.Add(span.Length);
        }
        Assert.True(lengths.Count >= 4, $"span lengths vary: {string.Join(", ", lengths)}");
        Assert.Contains(lengths, l => l < 6);
    }

    [Fact]
    public void SpanSamplingLeavesTextsAloneWithItsComplementProbabilityAndNeverCutsTextPairs()
    {
        var texts = Enumerable.Range(0, 200).Select(_ => Enumerable.Range(10, 8).Select(i => (long)i).ToArray()).ToArray();
        using var packed = Pack(12, texts);
        using var augmenter = Augmenter(new TokenAugmentation(0, 0, SpanProbability: 0.25));

        using var result = augmenter.Apply(packed);

        int cut = Enumerable.Range(0, texts.Length).Count(r => Row(result, r, 1).Sum() < 10);
        Assert.InRange(cut, 30, 70); // 25 % of 200 = 50

        // A second segment (token type 1) marks a text pair: it is never cut.
        using var pair = packed.clone();
        pair.index_put_(torch.ones(200, 5, dtype: ScalarType.Int64), TensorIndex.Colon, TensorIndex.Single(2), TensorIndex.Slice(5, 10));
        using var always = Augmenter(new TokenAugmentation(0, 0, SpanProbability: 1));
        using var pairs = always.Apply(pair);
        Assert.Equal(pair.data<long>().ToArray(), pairs.data<long>().ToArray());
    }

    [Fact]
    public void NearestWordPiecesFollowCosineSimilarityAndSkipExcludedPiecesAndTheWordItself()
    {
        // Pieces 0–3 point along x, y, x+small y, −x; 4 is excluded though it is x itself.
        using var table = torch.tensor(new float[,] { { 1, 0 }, { 0, 1 }, { 2, 0.2f }, { -1, 0 }, { 5, 0 } });
        using var nearest = new NearestWordPieces(table, k: 2, excludedIds: new[] { 4 });

        using var ids = torch.tensor(new long[] { 0, 3 });
        var result = nearest.For(ids);

        Assert.Equal(new long[] { 2, 1 }, result[0].data<long>().ToArray()); // x: x+small y first, then y; never itself or 4
        Assert.Equal(new long[] { 1, 2 }, result[3].data<long>().ToArray()); // −x: y (cos 0) before x+small y (cos −0.995)
    }

    [Fact]
    public void NeighbourReplacementSwapsEveryRealPieceForOneOfItsNeighboursAndLeavesSpecialTokens()
    {
        // 40 pieces on a circle: the two nearest of piece i are i − 1 and i + 1 (mod 40).
        var angles = Enumerable.Range(0, 40).Select(i => 2 * Math.PI * i / 40).ToArray();
        var points = new float[40, 2];
        for (int i = 0; i < 40; i++)
            (points[i, 0], points[i, 1]) = ((float)Math.Cos(angles[i]), (float)Math.Sin(angles[i]));
        using var table = torch.tensor(points);
        using var nearest = new NearestWordPieces(table, k: 2, excludedIds: Array.Empty<int>());
        var texts = Enumerable.Range(0, 20).Select(r => Enumerable.Range(0, 6).Select(i => (long)(10 + (r + i) % 25)).ToArray()).ToArray();
        using var packed = Pack(10, texts);
        using var augmenter = Augmenter(new TokenAugmentation(0, ReplacementProbability: 1, 0), nearest);

        using var result = augmenter.Apply(packed);

        var seen = new HashSet<long>();
        for (int r = 0; r < texts.Length; r++)
        {
            var ids = Row(result, r, 0);
            Assert.Equal(Cls, ids[0]);
            Assert.Equal(Sep, ids[7]);
            Assert.All(ids.Skip(8), id => Assert.Equal(Pad, id));
            for (int i = 0; i < 6; i++)
            {
                long original = texts[r][i], replaced = ids[i + 1];
                Assert.Contains(replaced, new[] { (original + 39) % 40, (original + 1) % 40 });
                seen.Add(replaced - original);
            }
        }
        Assert.Equal(new long[] { -1, 1 }, seen.Order().ToArray()); // both neighbours get picked
        Assert.Equal(packed.select(1, 1).data<long>().ToArray(), result.select(1, 1).data<long>().ToArray());
    }

    [Fact]
    public void MaskingAndReplacementShareOneDrawPerPiece()
    {
        var texts = Enumerable.Range(0, 100).Select(_ => Enumerable.Range(10, 10).Select(i => (long)i).ToArray()).ToArray();
        using var packed = Pack(12, texts);
        using var augmenter = Augmenter(new TokenAugmentation(MaskProbability: 0.5, ReplacementProbability: 0.5, 0));

        using var result = augmenter.Apply(packed);

        var pieces = Enumerable.Range(0, 100).SelectMany(r => Row(result, r, 0).Skip(1).Take(10)).ToArray();
        int masked = pieces.Count(id => id == Mask);
        Assert.InRange(masked, 420, 580);                                        // half of 1,000
        int unchanged = pieces.Select((id, i) => id == 10 + i % 10 ? 1 : 0).Sum();
        Assert.True(unchanged < 60, $"{unchanged} pieces unchanged; only replacements landing on the same piece (1 in 40) keep them");
    }
}
