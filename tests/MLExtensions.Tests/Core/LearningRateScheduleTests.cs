using MLExtensions.Core;
using Xunit;

namespace MLExtensions.Tests.Core;

public class LearningRateScheduleTests
{
    [Fact]
    public void ConstantStaysAtOne() =>
        Assert.All(new long[] { 0, 5, 99 }, s => Assert.Equal(1.0, new LearningRateScheduleOptions().Factor(s, 100, 3)));

    [Fact]
    public void StepDecaysEveryStepEpochs()
    {
        var schedule = new LearningRateScheduleOptions { Kind = LearningRateScheduleKind.Step, StepEpochs = 2, StepGamma = 0.5 };
        Assert.Equal(new[] { 1.0, 1.0, 0.5, 0.5, 0.25 }, Enumerable.Range(0, 5).Select(e => schedule.Factor(0, 10, e)));
    }

    [Fact]
    public void CosineGoesFromOneToTheMinimum()
    {
        var schedule = new LearningRateScheduleOptions { Kind = LearningRateScheduleKind.Cosine, MinimumFactor = 0.1 };
        Assert.Equal(1.0, schedule.Factor(0, 100, 0), 12);
        Assert.Equal(0.55, schedule.Factor(50, 100, 0), 12);
        Assert.Equal(0.1, schedule.Factor(100, 100, 0), 12);
    }

    [Fact]
    public void WarmupLinearRisesThenDecays()
    {
        var schedule = new LearningRateScheduleOptions { Kind = LearningRateScheduleKind.WarmupLinear, WarmupFraction = 0.1 };
        Assert.Equal(0.1, schedule.Factor(0, 100, 0), 12);   // (0 + 1) / 10
        Assert.Equal(1.0, schedule.Factor(9, 100, 0), 12);
        Assert.Equal(1.0, schedule.Factor(10, 100, 0), 12);
        Assert.Equal(0.5, schedule.Factor(55, 100, 0), 12);
        Assert.Equal(0.0, schedule.Factor(100, 100, 0), 12);
    }

    [Fact]
    public void InvalidSettingsNameTheOption()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateScheduleOptions { WarmupFraction = 1 }.Validate());
        Assert.StartsWith("LearningRateSchedule.WarmupFraction must be in [0, 1); found 1.", e.Message);
    }
}
