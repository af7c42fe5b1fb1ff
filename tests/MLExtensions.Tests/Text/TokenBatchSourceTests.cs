using Microsoft.ML;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Text;
using Xunit;

namespace MLExtensions.Tests.Text;

public class TokenBatchSourceTests
{
    private static TokenBatchSource Source(bool bucket)
    {
        TorchNativeLoader.EnsureLoaded();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(TinyText.Make(200, 7));
        var label = LabelBinding.Bind(data.Schema, "Label", PredictionTask.BinaryClassification);
        var tokenizer = new WordPieceTokenizer(TinyText.Vocabulary, true);
        return TokenBatchSource.Read(data, new TextColumns("Text", null), label, tokenizer, 32, bucket, CancellationToken.None);
    }

    [Fact]
    public void BatchesArePaddedOnlyToTheirLongestRowAndMasked()
    {
        foreach (var batch in Source(bucket: false).GetBatches(0, 16, shuffle: true, seed: 1))
        {
            using (batch)
            {
                var packed = batch.Inputs[0];
                long length = packed.shape[2];
                var mask = packed.select(1, 1);
                var lengths = mask.sum(dim: 1L).data<long>().ToArray();
                Assert.Equal(length, lengths.Max()); // no column of pure padding
                var ids = packed.select(1, 0);
                // Every masked position holds [PAD] (id 0), every real one does not.
                Assert.True(ids.masked_select(mask.eq(0)).eq(0).all().item<bool>());
                Assert.True(ids.masked_select(mask.eq(1)).ne(0).all().item<bool>());
            }
        }
    }

    [Fact]
    public void LengthBucketingReducesPaddingAndKeepsEveryRow()
    {
        long Padding(TokenBatchSource source, out int rows)
        {
            long padding = 0;
            rows = 0;
            foreach (var batch in source.GetBatches(0, 16, shuffle: true, seed: 3))
            {
                using (batch)
                {
                    var mask = batch.Inputs[0].select(1, 1);
                    padding += mask.eq(0).sum().item<long>();
                    rows += batch.Count;
                }
            }
            return padding;
        }
        long plain = Padding(Source(bucket: false), out int plainRows);
        long bucketed = Padding(Source(bucket: true), out int bucketedRows);
        Assert.Equal(200, plainRows);
        Assert.Equal(200, bucketedRows);
        Assert.True(bucketed < plain / 2, $"padding with buckets {bucketed}, without {plain}");
    }
}
