using MLExtensions.Sweeps;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>ASHA and the median rule on scripted learning curves; the expected decisions are worked out by hand in the comments.</summary>
public class PrunerTests
{
    // Nine epochs each; ASHA (η = 3) decides after epochs 1 and 3 (epoch 9 is the end).
    private static readonly double[][] AshaCurves =
    {
        new[] { 0.50, 0.55, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68 }, // T0 alone at rung 1 and 3: promoted → completes
        new[] { 0.40, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90 }, // T1 rung 1: {0.50, 0.40}, top ⌊2/3⌋→1 = 0.50 → stops after 1 epoch
        new[] { 0.55, 0.58, 0.60, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90 }, // T2 rung 1: best of 3 → promoted; rung 3: {0.62, 0.60} → stops after 3
        new[] { 0.45, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90 }, // T3 rung 1: 4 values, top 1 = 0.55 → stops after 1
        new[] { 0.52, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90 }, // T4 rung 1: 5 values, top 1 = 0.55 → stops after 1
        new[] { 0.54, 0.56, 0.63, 0.64, 0.65, 0.66, 0.67, 0.68, 0.70 }, // T5 rung 1: 6 values, top 2 = {0.55, 0.54} → promoted; rung 3: {0.62, 0.60, 0.63} top 1 → completes
    };

    [Fact]
    public void AshaPromotesOnlyTheTopThirdOfEachRung()
    {
        var trials = SweepTestDriver.Prune(new AshaPruner(), SweepResource.Epochs, higherIsBetter: true, AshaCurves);

        Assert.Equal(new[] { 9, 1, 3, 1, 1, 9 }, trials.Select(t => t.IntermediateMetrics.Count));
        Assert.Equal(new[] { TrialStatus.Completed, TrialStatus.Pruned, TrialStatus.Pruned, TrialStatus.Pruned, TrialStatus.Pruned, TrialStatus.Completed },
            trials.Select(t => t.Status));
    }

    [Fact]
    public void AshaFollowsTheSameRuleForLowerIsBetterValues()
    {
        var losses = AshaCurves.Select(c => c.Select(v => 1 - v).ToArray()).ToArray();
        var trials = SweepTestDriver.Prune(new AshaPruner(), SweepResource.Epochs, higherIsBetter: false, losses);

        Assert.Equal(new[] { 9, 1, 3, 1, 1, 9 }, trials.Select(t => t.IntermediateMetrics.Count));
    }

    [Fact]
    public void AshaRungsAreAtPowersOfThreeForEpochsAndEverySubsampleForRows()
    {
        Assert.Equal(new[] { 1, 3, 9, 27 }, Enumerable.Range(1, 30).Where(s => AshaPruner.IsRung(s, SweepResource.Epochs)));
        Assert.True(AshaPruner.IsRung(1, SweepResource.RowFraction));
        Assert.True(AshaPruner.IsRung(2, SweepResource.RowFraction));
    }

    [Fact]
    public void AshaOnRowSubsamplesComparesEachSubsample()
    {
        // Three subsamples (1/9, 1/3, all rows): decisions after the first two.
        var trials = SweepTestDriver.Prune(new AshaPruner(), SweepResource.RowFraction, higherIsBetter: true,
            new[] { 0.80, 0.85, 0.90 },  // alone: completes
            new[] { 0.82, 0.84, 0.95 },  // step 1: best of 2 → on; step 2: {0.85, 0.84} → stops after 2
            new[] { 0.70, 0.99, 0.99 }); // step 1: {0.80, 0.82, 0.70} top 1 = 0.82 → stops after 1

        Assert.Equal(new[] { 3, 2, 1 }, trials.Select(t => t.IntermediateMetrics.Count));
    }

    [Fact]
    public void MedianPrunerWaitsForFiveCompletedTrialsThenComparesTheBestSoFarWithTheMedian()
    {
        var trials = SweepTestDriver.Prune(new MedianPruner(), SweepResource.Epochs, higherIsBetter: true,
            new[] { 0.10, 0.20, 0.30 },
            new[] { 0.20, 0.30, 0.40 },
            new[] { 0.30, 0.40, 0.50 },
            new[] { 0.40, 0.50, 0.60 },
            new[] { 0.00, 0.00, 0.00 }, // T4: below everything, but only 4 trials had completed → runs to the end
            // Now 5 completed. Medians: step 1 of {0.1, 0.2, 0.3, 0.4, 0} = 0.2; step 2 of {0.2, 0.3, 0.4, 0.5, 0} = 0.3.
            new[] { 0.15, 0.90, 0.90 }, // T5: 0.15 < 0.2 → stops after 1
            new[] { 0.25, 0.28, 0.90 }, // T6: step 1 ok; step 2 best 0.28 < 0.3 → stops after 2
            new[] { 0.35, 0.29, 0.90 }, // T7: step 2 value 0.29 < 0.3, but its best so far 0.35 ≥ 0.3 → completes (Optuna's rule)
            // 6 completed: step 1 of {0.1, 0.2, 0.3, 0.4, 0, 0.35} → (0.2 + 0.3) / 2 = 0.25.
            new[] { 0.24, 0.90, 0.90 }, // T8: 0.24 < 0.25 → stops after 1
            new[] { 0.25, 0.90, 0.90 }); // T9: 0.25 is not below the median → completes

        Assert.Equal(new[] { 3, 3, 3, 3, 3, 1, 2, 3, 1, 3 }, trials.Select(t => t.IntermediateMetrics.Count));
    }

    [Fact]
    public void NoPrunerLetsEveryTrialFinish()
    {
        var trials = SweepTestDriver.Prune(new NoPruner(), SweepResource.Epochs, higherIsBetter: true, AshaCurves);
        Assert.All(trials, t => Assert.Equal(TrialStatus.Completed, t.Status));
    }
}
