using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Tabular;

/// <summary>Every kind of bad input gets an exception that names the column, what was expected and what was found.</summary>
public class NeuralNetworkBadInputTests
{
    private readonly MLContext _ml = new(seed: 1);

    private static NeuralNetworkOptions Quick() => new() { HiddenLayers = new[] { 4 }, Epochs = 2 };

    private IDataView Wine() => TabularData.LoadWine(_ml);

    private IDataView KeyedWine() => _ml.Transforms.Conversion.MapValueToKey("Label").Fit(Wine()).Transform(Wine());

    [Fact]
    public void MissingFeatureColumn()
    {
        var options = Quick();
        options.FeatureColumnName = "Pixels";
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(KeyedWine()));
        Assert.StartsWith("The feature column 'Pixels' was not found in the input data. Available columns: 'Features', 'Label'.", e.Message);
    }

    [Fact]
    public void MissingLabelColumn()
    {
        var options = Quick();
        options.LabelColumnName = "Target";
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Regression.Trainers.NeuralNetwork(options).Fit(Wine()));
        Assert.StartsWith("The label column 'Target' was not found in the input data.", e.Message);
    }

    [Fact]
    public void FeatureColumnOfTheWrongType()
    {
        var data = _ml.Data.LoadFromEnumerable(new[] { new TextFeatures { Features = "a", Label = 1 } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Regression.Trainers.NeuralNetwork(Quick()).Fit(data));
        Assert.StartsWith("The feature column 'Features' must be a known-size vector of Single; found String.", e.Message);
    }

    [Fact]
    public void VariableSizeFeatureVector()
    {
        var data = _ml.Data.LoadFromEnumerable(new[] { new VariableFeatures { Features = new[] { 1f, 2f }, Label = 1 } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Regression.Trainers.NeuralNetwork(Quick()).Fit(data));
        Assert.StartsWith("The feature column 'Features' must be a known-size vector of Single; found Vector<Single>.", e.Message);
    }

    [Fact]
    public void MulticlassLabelThatIsNotAKeySuggestsMapValueToKey()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.NeuralNetwork(Quick()).Fit(Wine()));
        Assert.StartsWith("The label column 'Label' must be a key type (Key<UInt32>); found Single. Convert the label with mlContext.Transforms.Conversion.MapValueToKey(\"Label\") before the trainer.", e.Message);
    }

    [Fact]
    public void BinaryLabelOfTheWrongType()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.BinaryClassification.Trainers.NeuralNetwork(Quick()).Fit(KeyedWine()));
        Assert.StartsWith("The label column 'Label' must be Boolean (or Single with values 0 and 1); found Key<UInt32, 0-2>.", e.Message);
    }

    [Fact]
    public void SingleClassLabel()
    {
        var one = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new VectorRow { Features = new[] { i, 1f }, Label = 7 }));
        var keyed = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(one).Transform(one);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.NeuralNetwork(Quick()).Fit(keyed));
        Assert.StartsWith("The label column 'Label' has 1 class; at least 2 classes are needed.", e.Message);
    }

    [Fact]
    public void NaNFeaturesFailByDefaultAndCanBeSkipped()
    {
        var rows = Enumerable.Range(0, 40).Select(i => new VectorRow { Features = new[] { i % 7f, i % 3f }, Label = i % 5 }).ToList();
        rows[13].Features[1] = float.NaN;
        var data = _ml.Data.LoadFromEnumerable(rows);
        var options = Quick();
        options.ValidationFraction = 0;

        var e = Assert.Throws<InvalidOperationException>(() => _ml.Regression.Trainers.NeuralNetwork(options).Fit(data));
        Assert.StartsWith("The feature column 'Features' has a non-finite value (NaN) at slot 1 in row 13.", e.Message);

        options.InvalidFeatures = MLExtensions.Core.InvalidFeatureHandling.Skip;
        var trainer = _ml.Regression.Trainers.NeuralNetwork(options);
        var messages = new List<string>();
        _ml.Log += (_, m) => messages.Add(m.RawMessage);
        trainer.Fit(data);
        Assert.Contains("Skipped 1 training rows with NaN or infinite features.", messages);
    }

    [Fact]
    public void EmptyTrainingData()
    {
        var empty = _ml.Data.LoadFromEnumerable(new List<VectorRow>());
        var e = Assert.Throws<InvalidOperationException>(() => _ml.Regression.Trainers.NeuralNetwork(Quick()).Fit(empty));
        Assert.Equal("The training data is empty: no rows with a label were found.", e.Message);
    }

    [Fact]
    public void ModelAppliedToDataWithADifferentFeatureSize()
    {
        var model = _ml.Regression.Trainers.NeuralNetwork(Quick()).Fit(Wine());
        var other = _ml.Data.LoadFromEnumerable(new[] { new VectorRow { Features = new[] { 1f, 2f } } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(other));
        Assert.StartsWith("The feature column 'Features' must have 13 values, as in the training data; found a vector of 2.", e.Message);
        var engine = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Model.CreatePredictionEngine<VectorRow, RegressionPrediction>(model));
        Assert.StartsWith("The feature column 'Features' must have 13 values", engine.Message);
    }

    [Theory]
    [InlineData("Epochs", "Epochs must be > 0; found 0.")]
    [InlineData("BatchSize", "BatchSize must be > 0; found 0.")]
    [InlineData("Dropout", "Dropout must be in [0, 1); found 1.")]
    [InlineData("LearningRate", "Optimizer.LearningRate must be a finite number > 0; found 0.")]
    [InlineData("ValidationFraction", "ValidationFraction must be in [0, 0.9]; found 1.")]
    [InlineData("HiddenLayers", "HiddenLayers[1] must be ≥ 1; found 0.")]
    public void InvalidOptionsAreRejectedWhenTheTrainerIsCreated(string option, string message)
    {
        var options = Quick();
        switch (option)
        {
            case "Epochs": options.Epochs = 0; break;
            case "BatchSize": options.BatchSize = 0; break;
            case "Dropout": options.Dropout = 1; break;
            case "LearningRate": options.Optimizer.LearningRate = 0; break;
            case "ValidationFraction": options.ValidationFraction = 1; break;
            case "HiddenLayers": options.HiddenLayers = new[] { 4, 0 }; break;
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.Regression.Trainers.NeuralNetwork(options));
        Assert.StartsWith(message, e.Message);
    }

    private sealed class TextFeatures
    {
        public string Features { get; set; } = "";

        public float Label { get; set; }
    }

    private sealed class VariableFeatures
    {
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }
}
