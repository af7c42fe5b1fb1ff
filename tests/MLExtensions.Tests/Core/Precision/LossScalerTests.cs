using Microsoft.ML;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Core.Precision;

/// <summary>float16 dynamic loss scaling: the GradScaler rule on a scripted sequence, and inside the training loop.</summary>
public class LossScalerTests
{
    public LossScalerTests() => TorchNativeLoader.EnsureLoaded();

    [Fact]
    public void FollowsSkipHalveGrowOnAScriptedOverflowSequence()
    {
        var scaler = new LossScaler(new LossScalingOptions { InitialScale = 1024, GrowthInterval = 3 });
        // (gradients finite?, step taken?, scale after, growth tracker after), worked out by hand from the rule.
        var script = new (bool Finite, bool Taken, double Scale, int Tracker)[]
        {
            (false, false, 512, 0),  // overflow: skip, halve
            (false, false, 256, 0),  // again
            (true, true, 256, 1),
            (true, true, 256, 2),
            (true, true, 512, 0),    // third finite step in a row: grow
            (true, true, 512, 1),
            (false, false, 256, 0),  // overflow resets the run of finite steps
            (true, true, 256, 1),
            (true, true, 256, 2),
            (true, true, 512, 0),
        };
        foreach (var (finite, taken, scale, tracker) in script)
        {
            Assert.Equal(taken, scaler.Update(finite));
            Assert.Equal(scale, scaler.Scale);
            Assert.Equal(tracker, scaler.GrowthTracker);
        }
    }

    [Fact]
    public void UnscalesGradientsAndSkipsOnInfinityOrNaN()
    {
        var scaler = new LossScaler(new LossScalingOptions { InitialScale = 8 });
        var p = torch.zeros(3, requires_grad: true);
        p.sum().mul(8).backward(); // a scaled loss: gradient 8 per entry
        Assert.True(scaler.UnscaleAndDecide(new[] { p }));
        Assert.Equal(new[] { 1f, 1f, 1f }, p.grad!.data<float>().ToArray());
        Assert.Equal(8, scaler.Scale);

        foreach (var bad in new[] { float.PositiveInfinity, float.NaN })
        {
            p.grad!.copy_(torch.tensor(new[] { 1f, bad, 1f }));
            double before = scaler.Scale;
            Assert.False(scaler.UnscaleAndDecide(new[] { p }));
            Assert.Equal(before / 2, scaler.Scale);
        }
    }

    [Fact]
    public void TrainingLoopSkipsOverflowingFloat16StepsAndReportsThem()
    {
        // Scale 2^40 makes every float16 gradient overflow until the scale has halved far enough; each such step is
        // skipped, so scale = 2^40 · 0.5^skipped (no growth with a long interval), and training still learns after that.
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var options = new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 16 }, Epochs = 4, BatchSize = 16, ValidationFraction = 0, Seed = 3,
            Precision = TrainingPrecision.Float16,
            LossScaling = { InitialScale = Math.Pow(2, 40), GrowthInterval = 100_000 },
        };
        var reports = new List<TrainingProgress>();
        options.Progress = new SynchronousProgress<TrainingProgress>(reports.Add);
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
        var model = trainer.Fit(data);
        var state = trainer.LastTrainingState!;

        Assert.Equal(TrainingPrecision.Float16, state.Precision);
        Assert.InRange(state.SkippedSteps, 10, state.Step - 5);
        Assert.Equal(Math.Pow(2, 40) * Math.Pow(0.5, state.SkippedSteps), state.LossScale);
        Assert.Equal(state.SkippedSteps, state.History.Sum(e => e.SkippedSteps));
        Assert.Equal(state.SkippedSteps, reports.Last().SkippedSteps);
        Assert.True(state.History[^1].TrainingLoss < state.History[0].TrainingLoss, "training should learn once the scale fits");
        Assert.All(model.Network.parameters(), p => Assert.Equal(float32, p.dtype));
    }
}
