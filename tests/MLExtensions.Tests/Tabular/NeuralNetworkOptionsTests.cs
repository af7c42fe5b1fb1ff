using Microsoft.ML;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Tabular;

/// <summary>Every optimizer, schedule, loss and activation option trains a network (not just validates).</summary>
public class NeuralNetworkOptionsTests
{
    private static IDataView Sine(MLContext ml, int count, int seed)
    {
        var random = new Random(seed);
        return ml.Data.LoadFromEnumerable(Enumerable.Range(0, count).Select(_ =>
        {
            float x0 = (float)(random.NextDouble() * 3 - 1.5), x1 = (float)(random.NextDouble() * 3 - 1.5);
            return new VectorRow { Features = new[] { x0, x1 }, Label = MathF.Sin(2 * x0) + x1 * x1 };
        }).ToList());
    }

    [Theory]
    [InlineData(OptimizerKind.Sgd, LearningRateScheduleKind.Step, RegressionLossKind.MeanSquaredError, Activation.Tanh)]
    [InlineData(OptimizerKind.Sgd, LearningRateScheduleKind.Cosine, RegressionLossKind.Huber, Activation.ReLU)]
    [InlineData(OptimizerKind.Adam, LearningRateScheduleKind.WarmupCosine, RegressionLossKind.MeanAbsoluteError, Activation.GELU)]
    [InlineData(OptimizerKind.AdamW, LearningRateScheduleKind.WarmupLinear, RegressionLossKind.Huber, Activation.LeakyReLU)]
    [InlineData(OptimizerKind.Adam, LearningRateScheduleKind.Constant, RegressionLossKind.MeanSquaredError, Activation.Sigmoid)]
    public void EveryOptimizerScheduleAndLossLearnsTheFunction(OptimizerKind optimizer, LearningRateScheduleKind schedule, RegressionLossKind loss, Activation activation)
    {
        var ml = new MLContext(seed: 1);
        var options = new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 32, 32 },
            Activation = activation,
            Dropout = 0,
            Epochs = 40,
            RegressionLoss = loss,
            GradientClippingNorm = 5,
            LearningRateSchedule = { Kind = schedule, StepEpochs = 15, StepGamma = 0.5, WarmupFraction = 0.05 },
            Optimizer = { Kind = optimizer, LearningRate = optimizer == OptimizerKind.Sgd ? 0.05 : 3e-3, Nesterov = optimizer == OptimizerKind.Sgd },
        };
        var baseline = ml.Regression.Evaluate(ml.Regression.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = Array.Empty<int>(), Epochs = 40 })
            .Fit(Sine(ml, 1500, 1)).Transform(Sine(ml, 400, 2))).RootMeanSquaredError;

        var model = ml.Regression.Trainers.NeuralNetwork(options).Fit(Sine(ml, 1500, 1));
        double rmse = ml.Regression.Evaluate(model.Transform(Sine(ml, 400, 2))).RootMeanSquaredError;

        // A linear model (no hidden layer) cannot fit sin(2x₀) + x₁²; each configuration must do far better.
        Assert.True(rmse < 0.25 && rmse < baseline / 3, $"{optimizer}/{schedule}/{loss}/{activation}: RMSE {rmse:F3}, linear {baseline:F3}");
    }

    [Fact]
    public void LayerActivationsAndLabelSmoothingAreUsed()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var options = new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 16, 8 },
            LayerActivations = new[] { Activation.GELU, Activation.Tanh },
            LabelSmoothing = 0.2,
            Epochs = 60,
        };
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(data);
        var body = model.Model.Body.named_children().Select(c => c.module.GetType().Name).ToList();
        Assert.Equal(new[] { "Linear", "GELU", "SeededDropout", "Linear", "Tanh", "SeededDropout" }, body);
        var scores = ml.Data.CreateEnumerable<MulticlassPrediction>(model.Transform(data), false).Select(p => p.Score.Max()).ToList();
        // Label smoothing 0.2 over 3 classes caps the trained confidence well below 1 (the target is 0.867).
        Assert.True(scores.Max() < 0.95, $"max probability {scores.Max()}");
        Assert.True(ml.MulticlassClassification.Evaluate(model.Transform(data)).MicroAccuracy > 0.9);
    }
}
