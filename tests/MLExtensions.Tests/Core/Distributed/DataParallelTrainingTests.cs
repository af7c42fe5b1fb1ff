using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Core.Distributed;

/// <summary>
/// Data-parallel training across MPI ranks, through real <c>mpirun</c> jobs of the worker program (the small tabular network
/// on the wine data). The oracle is the same training in one process with the global batch: 2 ranks × 10 rows must give the
/// weights, losses and decisions of 1 process × 20 rows.
/// </summary>
public class DataParallelTrainingTests
{
    /// <summary>Float rounding differs (a sum of two half-batch gradients vs one batch), so weights agree to this, not bitwise.</summary>
    private const double Tolerance = 1e-5;

    [Fact]
    public void TwoRanksWithBatchBTrainLikeOneProcessWithBatch2BAndHoldIdenticalWeights()
    {
        var twoRanks = MpiJob.Run(2, "batch=10", "epochs=4");
        twoRanks.Succeeded(2);
        var oneProcess = MpiJob.RunAlone("dp=0", "batch=20", "epochs=4").Succeeded(1);

        var (rank0, rank1) = (twoRanks.Ranks[0], twoRanks.Ranks[1]);
        Assert.Equal(0, rank0.MaxWeightDifference(rank1)); // bit-identical on every rank
        double difference = rank0.MaxWeightDifference(oneProcess);
        Assert.True(difference < Tolerance, $"2 ranks × 10 rows differ from 1 process × 20 rows by {difference}.");
        Assert.True(rank0.MaxWeightDifference(MpiJob.RunAlone("dp=0", "batch=10", "epochs=4").Succeeded(1)) > 1e-3,
            "The comparison cannot tell the global batch from the rank's batch.");
        for (int e = 0; e < 4; e++)
            Assert.Equal(oneProcess.History[e][0], rank0.History[e][0], Tolerance); // training loss over all ranks' rows
    }

    [Fact]
    public void ValidationIsReducedOverTheRanksAndEarlyStoppingDecidesAlike()
    {
        string[] settings = { "validation=0.3", "lr=0.1", "epochs=40", "patience=2" };
        var twoRanks = MpiJob.Run(2, settings.Append("batch=10").ToArray());
        twoRanks.Succeeded(2);
        var oneProcess = MpiJob.RunAlone(settings.Append("dp=0").Append("batch=20").ToArray()).Succeeded(1);

        Assert.Equal("EarlyStopping", oneProcess.StopReason);
        foreach (var rank in twoRanks.Ranks)
        {
            Assert.Equal(oneProcess.StopReason, rank.StopReason);
            Assert.Equal(oneProcess.EpochsCompleted, rank.EpochsCompleted);
            Assert.Equal(oneProcess.BestEpoch, rank.BestEpoch);
            Assert.True(rank.MaxWeightDifference(oneProcess) < Tolerance);
            // Each rank validated half of the held-out rows; the reduced loss and accuracy are those of all of them.
            for (int e = 0; e < oneProcess.History.Count; e++)
            {
                Assert.Equal(oneProcess.History[e][1], rank.History[e][1], Tolerance);
                Assert.Equal(oneProcess.History[e][2], rank.History[e][2], Tolerance);
            }
        }
        Assert.Equal(twoRanks.Ranks[0].History.SelectMany(h => h), twoRanks.Ranks[1].History.SelectMany(h => h));
    }

    [Fact]
    public void ACheckpointOfTwoRanksResumesOnOneProcessWithTheSameGlobalBatch()
    {
        using var checkpoint = new TempDirectory();
        MpiJob.Run(2, "batch=10", "epochs=2", $"checkpoint={checkpoint.Path}").Succeeded(2);
        Assert.Single(Directory.GetFiles(checkpoint.Path)); // written once, by rank 0

        var refused = MpiJob.RunAlone("dp=0", "batch=10", "epochs=4", $"checkpoint={checkpoint.Path}");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("global batch of 20 rows", refused.StandardError);

        var resumed = MpiJob.RunAlone("dp=0", "batch=20", "epochs=4", $"checkpoint={checkpoint.Path}").Succeeded(1);
        var uninterrupted = MpiJob.RunAlone("dp=0", "batch=20", "epochs=4").Succeeded(1);
        Assert.Equal(4, resumed.EpochsCompleted);
        Assert.True(resumed.MaxWeightDifference(uninterrupted) < Tolerance);
    }

    [Fact]
    public void SyncBatchNormTrainsLikeOneProcessAndPerRankStatisticsDoNot()
    {
        // SGD, not AdamW: the bias before a BatchNorm has a gradient that is zero but for rounding, which Adam's normalisation
        // would blow up into different steps in both runs.
        var synchronised = MpiJob.Run(2, "batch=10", "bn=1", "opt=sgd", "lr=0.1", "syncbn=1");
        synchronised.Succeeded(2);
        var perRank = MpiJob.Run(2, "batch=10", "bn=1", "opt=sgd", "lr=0.1").Succeeded(2);
        var oneProcess = MpiJob.RunAlone("dp=0", "batch=20", "bn=1", "opt=sgd", "lr=0.1").Succeeded(1);

        Assert.Equal(0, synchronised.Ranks[0].MaxWeightDifference(synchronised.Ranks[1]));
        double difference = synchronised.Ranks[0].MaxWeightDifference(oneProcess); // running statistics included
        Assert.True(difference < 1e-4, $"Synchronised BatchNorm differs from one process by {difference}.");
        Assert.True(perRank.MaxWeightDifference(oneProcess) > 1e-4, "Per-rank BatchNorm statistics should differ from the global batch's.");
    }

    [Fact]
    public void TheLinearScalingRuleMultipliesTheLearningRateByTheRanks()
    {
        // Without warm-up, 2 ranks at 0.005 with the rule step like one process at 0.01; with one epoch of warm-up they do not.
        var scaled = MpiJob.Run(2, "batch=10", "lr=0.005", "scalelr=1", "warmup=0");
        scaled.Succeeded(2);
        var warmedUp = MpiJob.Run(2, "batch=10", "lr=0.005", "scalelr=1", "warmup=1").Succeeded(2);
        var oneProcess = MpiJob.RunAlone("dp=0", "batch=20", "lr=0.01").Succeeded(1);

        Assert.True(scaled.Ranks[0].MaxWeightDifference(oneProcess) < Tolerance);
        Assert.True(warmedUp.MaxWeightDifference(oneProcess) > 1e-3);
    }

    [Fact]
    public void ADistilledStudentTrainsLikeOneProcess()
    {
        // Each rank scores half of the rows with the teacher; all ranks end with every row's soft targets.
        var twoRanks = MpiJob.Run(2, "distill=1", "batch=10", "validation=0.2");
        twoRanks.Succeeded(2);
        var oneProcess = MpiJob.RunAlone("distill=1", "dp=0", "batch=20", "validation=0.2").Succeeded(1);

        Assert.Equal(0, twoRanks.Ranks[0].MaxWeightDifference(twoRanks.Ranks[1]));
        Assert.True(twoRanks.Ranks[0].MaxWeightDifference(oneProcess) < Tolerance);
        Assert.Equal(oneProcess.History[^1][1], twoRanks.Ranks[0].History[^1][1], Tolerance);
    }

    [Fact]
    public void AnExceptionOnOneRankEndsTheJobWithItsMessage()
    {
        // Without the abort, rank 0 would wait forever in the next all-reduce.
        var job = MpiJob.Start(2, new[] { "batch=10", "epochs=500", "throw=1:1" }, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, job.ExitCode);
        Assert.Contains("rank 1 of 2] aborting the job: InvalidOperationException: Injected failure on rank 1 after epoch 1.", job.StandardError);
        Assert.Empty(job.Ranks);
    }

    [Theory]
    [InlineData("seed=rank", "disagree on Seed: rank 0 has 11, rank 1 has 12")]
    [InlineData("batch+rank=1", "disagree on BatchSize: rank 0 has 10, rank 1 has 11")]
    public void MismatchedOptionsBetweenRanksAreNamed(string setting, string expected)
    {
        var job = MpiJob.Run(2, "batch=10", setting);
        Assert.NotEqual(0, job.ExitCode);
        Assert.Contains(expected, job.StandardError);
    }

    [Fact]
    public void DataParallelOffChangesNothing()
    {
        var off = MpiJob.RunAlone("dp=0", "batch=20", "validation=0.2").Succeeded(1);
        var oneRank = MpiJob.Run(1, "batch=20", "validation=0.2").Succeeded(1);

        Assert.False(off.MpiLoaded); // DataParallel = null never touches MPI
        Assert.True(oneRank.MpiLoaded);
        Assert.Equal(0, off.MaxWeightDifference(oneRank)); // and one rank is bit for bit the single-process run
        Assert.Equal(off.History.SelectMany(h => h), oneRank.History.SelectMany(h => h));
    }
}
