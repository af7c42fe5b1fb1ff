using MLExtensions.Core;
using MLExtensions.Core.Distributed;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Core.Distributed;

/// <summary>How rows are shared between ranks (no MPI needed): disjoint, complete, the same number of batches everywhere.</summary>
public class ShardedBatchSourceTests
{
    public ShardedBatchSourceTests() => MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();

    [Theory]
    [InlineData(178, 10, 2)]
    [InlineData(41, 4, 3)]
    [InlineData(5, 2, 4)] // the last global batch has fewer rows than ranks: some ranks get empty batches
    public void RanksGetDisjointSlicesThatTogetherAreTheGlobalBatches(int rows, int batchSize, int ranks)
    {
        using var source = InMemoryBatchSource.FromTensors(torch.arange(rows, torch.float32).reshape(rows, 1), torch.arange(rows, torch.int64));
        var global = source.GetBatches(3, batchSize * ranks, shuffle: true, seed: 7).Select(b => Rows(b)).ToList();
        var shards = Enumerable.Range(0, ranks)
            .Select(r => new ShardedBatchSource(source, r, ranks).GetBatches(3, batchSize, shuffle: true, seed: 7).Select(b => (Rows(b), b.GlobalCount)).ToList())
            .ToList();

        Assert.All(shards, s => Assert.Equal(global.Count, s.Count));
        for (int b = 0; b < global.Count; b++)
        {
            var union = shards.SelectMany(s => s[b].Item1).ToList();
            Assert.Equal(global[b], union); // in order, no row twice, none missing
            Assert.All(shards, s => Assert.Equal(global[b].Length, s[b].GlobalCount));
            Assert.All(shards, s => Assert.InRange(s[b].Item1.Length, global[b].Length / ranks, (global[b].Length + ranks - 1) / ranks));
        }
    }

    [Fact]
    public void OptionsAreValidated()
    {
        var options = new DataParallelOptions { BucketSizeMegabytes = 0 };
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Contains("DataParallel.BucketSizeMegabytes", e.Message);
        var trainer = new MLExtensions.Tabular.NeuralNetworkOptions { DataParallel = new DataParallelOptions { LearningRateWarmupEpochs = -1 } };
        Assert.Contains("DataParallel.LearningRateWarmupEpochs", Assert.Throws<ArgumentOutOfRangeException>(trainer.Validate).Message);
    }

    [Fact]
    public void AMissingOpenMpiNamesThePackageToInstall()
    {
        var e = Assert.Throws<InvalidOperationException>(() => MpiLibrary.Load(new[] { "libmpi-not-installed.so.40" }));
        Assert.Contains("apt-get install openmpi-bin", e.Message);
        Assert.Contains("libmpi-not-installed.so.40", e.Message);
    }

    private static float[] Rows(Batch batch)
    {
        using (batch)
            return batch.Inputs[0].reshape(-1).data<float>().ToArray();
    }
}
