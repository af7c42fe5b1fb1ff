using Microsoft.ML;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Tabular;

public class NeuralNetworkLearningTests
{
    private readonly ITestOutputHelper _output;

    public NeuralNetworkLearningTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void LearnsXorWithOneHiddenLayer()
    {
        var ml = new MLContext(seed: 1);
        var points = new[] { (0f, 0f, false), (0f, 1f, true), (1f, 0f, true), (1f, 1f, false) };
        var rows = Enumerable.Range(0, 50).SelectMany(_ => points)
            .Select(p => new BinaryVectorRow { Features = new[] { p.Item1, p.Item2 }, Label = p.Item3 }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Activation = Activation.Tanh, Dropout = 0, Epochs = 150, ValidationFraction = 0 };
        options.Optimizer.LearningRate = 0.03;

        var model = ml.BinaryClassification.Trainers.NeuralNetwork(options).Fit(data);

        var engine = ml.Model.CreatePredictionEngine<BinaryVectorRow, BinaryPrediction>(model);
        foreach (var (x0, x1, expected) in points)
        {
            var p = engine.Predict(new BinaryVectorRow { Features = new[] { x0, x1 } });
            Assert.Equal(expected, p.PredictedLabel);
            Assert.Equal(expected, p.Probability > 0.5f);
        }
        // A linear model cannot get all four XOR points right, so this checks the hidden layer is used.
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(data));
        Assert.Equal(1.0, metrics.Accuracy);
    }

    [Fact]
    public void FitsANonlinearFunction()
    {
        // y = sin(2 x0) + x1², x ∈ [-1.5, 1.5]²: smooth and clearly nonlinear.
        var ml = new MLContext(seed: 2);
        var random = new Random(7);
        VectorRow Make()
        {
            float x0 = (float)(random.NextDouble() * 3 - 1.5), x1 = (float)(random.NextDouble() * 3 - 1.5);
            return new VectorRow { Features = new[] { x0, x1 }, Label = MathF.Sin(2 * x0) + x1 * x1 };
        }
        var train = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 2000).Select(_ => Make()).ToList());
        var test = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 500).Select(_ => Make()).ToList());
        var options = new NeuralNetworkOptions { HiddenLayers = new[] { 64, 64 }, Dropout = 0, Epochs = 60 };
        options.Optimizer.LearningRate = 3e-3;

        var model = ml.Regression.Trainers.NeuralNetwork(options).Fit(train);

        var metrics = ml.Regression.Evaluate(model.Transform(test));
        _output.WriteLine($"RMSE {metrics.RootMeanSquaredError:F4}, R² {metrics.RSquared:F4}");
        // The target's standard deviation is about 1.0; an RMSE of 0.1 is 99% of the variance explained.
        Assert.True(metrics.RootMeanSquaredError < 0.1, $"RMSE {metrics.RootMeanSquaredError}");
    }

    [Fact]
    public void WineAccuracyMatchesSdcaMaximumEntropy()
    {
        var ml = new MLContext(seed: 3);
        var data = TabularData.LoadWine(ml);
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 3);
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label");

        var network = toKey.Append(ml.MulticlassClassification.Trainers.NeuralNetwork()).Fit(split.TrainSet);
        var sdca = toKey.Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(split.TrainSet);

        double networkAccuracy = ml.MulticlassClassification.Evaluate(network.Transform(split.TestSet)).MicroAccuracy;
        double sdcaAccuracy = ml.MulticlassClassification.Evaluate(sdca.Transform(split.TestSet)).MicroAccuracy;
        _output.WriteLine($"NeuralNetwork {networkAccuracy:F4}, SdcaMaximumEntropy {sdcaAccuracy:F4}");
        Assert.True(networkAccuracy >= 0.9, $"accuracy {networkAccuracy}");
        Assert.True(networkAccuracy >= sdcaAccuracy - 0.04, $"network {networkAccuracy} vs SDCA {sdcaAccuracy}");
    }

    [Fact]
    public void BreastCancerBinaryClassificationWithDefaults()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Transforms.Conversion.ConvertType("Label", outputKind: Microsoft.ML.Data.DataKind.Boolean)
            .Fit(TabularData.LoadBreastCancer(ml)).Transform(TabularData.LoadBreastCancer(ml));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 4);

        var model = ml.BinaryClassification.Trainers.NeuralNetwork().Fit(split.TrainSet);

        var metrics = ml.BinaryClassification.Evaluate(model.Transform(split.TestSet));
        _output.WriteLine($"accuracy {metrics.Accuracy:F4}, AUC {metrics.AreaUnderRocCurve:F4}, log-loss {metrics.LogLoss:F4}");
        Assert.True(metrics.Accuracy >= 0.93, $"accuracy {metrics.Accuracy}");
        Assert.True(metrics.AreaUnderRocCurve >= 0.97, $"AUC {metrics.AreaUnderRocCurve}");
    }
}
