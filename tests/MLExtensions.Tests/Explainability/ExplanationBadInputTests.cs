using Microsoft.ML;
using MLExtensions.Explainability;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>Each kind of bad input gets an exception naming the option or column, what was expected and what was found.</summary>
public class ExplanationBadInputTests
{
    [Fact]
    public void ModelWithoutScoreColumnIsRejected()
    {
        var ml = new MLContext();
        var data = Rows(ml, RandomRows(5, 3, 1), 3);
        var model = ml.Transforms.CopyColumns("Copy", "Features").Fit(data);
        var e = Assert.Throws<ArgumentException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap }).Fit(data));
        Assert.StartsWith("ExplainPredictions needs a model that adds a Score column (a trained regressor or classifier, or a pipeline ending in one); the model's output columns are [Features, Copy].", e.Message);
    }

    [Fact]
    public void MissingOrWronglyTypedColumnIsNamed()
    {
        var ml = new MLContext();
        var data = Rows(ml, RandomRows(5, 3, 1), 3);
        var model = Function(ml, 3, x => x[0]);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Pixels" }).Fit(data));
        Assert.StartsWith("The explained column 'Pixels' was not found in the data; its columns are [Features].", missing.Message);

        var labelled = ml.Data.LoadFromEnumerable(RandomRows(5, 3, 1).Select(r => new LabelledRow { Features = r, Label = 1 }).ToList(), Definition<LabelledRow>(3));
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Label" }).Fit(labelled));
        Assert.StartsWith("The explained column 'Label' must be a vector of a known number of Single values; found Single.", wrongType.Message);

        // After Fit, data without the column fails when the explanation is applied.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap }).Fit(data);
        var other = Rows(ml, RandomRows(5, 4, 1), 4);
        var wrongSize = Assert.Throws<ArgumentOutOfRangeException>(() => explainer.Transform(other));
        Assert.StartsWith("The explained column 'Features' must be a vector of 3 Single values; found Vector<Single, 4>.", wrongSize.Message);
    }

    [Fact]
    public void GradientMethodOnAModelWithoutGradientsPointsToKernelShap()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadBreastCancer(ml);
        var binary = ml.Transforms.Conversion.ConvertType("Label", outputKind: Microsoft.ML.Data.DataKind.Boolean).Fit(data).Transform(data);
        var sdca = ml.BinaryClassification.Trainers.SdcaLogisticRegression(maximumNumberOfIterations: 2).Fit(binary);
        foreach (var method in new[] { ExplanationMethod.IntegratedGradients, ExplanationMethod.DeepLiftShap })
        {
            var e = Assert.Throws<ArgumentException>(() => ml.Transforms.ExplainPredictions(sdca, new ExplanationOptions { Method = method }).Fit(binary));
            Assert.StartsWith($"{method} needs the gradients of one of MLExtensions' networks (NeuralNetwork, ImageClassifier, TextClassifier or a distilled student), but the model is BinaryPredictionTransformer`1, which has no gradients. Use ExplanationMethod.KernelShap, which explains any model through its predictions.", e.Message);
        }
        // KernelSHAP explains the same model.
        var explained = ml.Transforms.ExplainPredictions(sdca, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 5, Samples = 100 }).Fit(binary).Transform(ml.Data.TakeRows(binary, 1));
        Assert.Single(Read(explained));
    }

    [Fact]
    public void TargetClassOutsideTheClassesIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var wine = TabularData.LoadWine(ml);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine);
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 4 }, Epochs = 1 }).Fit(data);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { TargetClass = 3 }).Fit(data));
        Assert.StartsWith("TargetClass 3 is outside the classes: the model has 3 classes (0 to 2).", e.Message);
        var regression = Function(ml, 3, x => x[0]);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.ExplainPredictions(regression, new ExplanationOptions { Method = ExplanationMethod.KernelShap, TargetClass = 1 }).Fit(Rows(ml, RandomRows(3, 3, 1), 3)));
        Assert.StartsWith("TargetClass 1 is outside the classes: the model is a Regression model with one output (use 0 or leave TargetClass unset).", e2.Message);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { TargetClass = -1 }));
        Assert.StartsWith("TargetClass must be a class index ≥ 0; found -1.", e3.Message);

        var e4 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { InputColumnName = "Label" }).Fit(data));
        Assert.StartsWith("IntegratedGradients explains the column the network reads ('Features'); InputColumnName is 'Label'. Leave it unset or use KernelShap.", e4.Message);
    }

    [Fact]
    public void EmptyBackgroundAndNonPositiveStepsOrSamplesAreRejected()
    {
        var ml = new MLContext();
        var data = Rows(ml, RandomRows(5, 3, 1), 3);
        var model = Function(ml, 3, x => x[0]);
        var empty = Assert.Throws<ArgumentException>(() =>
            ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap }).Fit(Rows(ml, new List<float[]>(), 3)));
        Assert.StartsWith("The background data has no rows; ExplainPredictions needs at least one background row for the baseline and the expected output.", empty.Message);

        var steps = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Steps = 0 }));
        Assert.StartsWith("Steps must be > 0; found 0.", steps.Message);
        var samples = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, Samples = -2 }));
        Assert.StartsWith("Samples must be > 0; found -2.", samples.Message);
        var background = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { BackgroundRows = 0 }));
        Assert.StartsWith("BackgroundRows must be > 0; found 0.", background.Message);
        var baseline = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, Baseline = BaselineKind.Given, BaselineValues = new[] { 1f } }).Fit(data));
        Assert.StartsWith("BaselineValues must have one value per slot of the explained column (3); found 1.", baseline.Message);
    }

    [Fact]
    public void DeepLiftShapRefusesImageClassifiersThatAverageAMirroredView()
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(MLExtensions.Tests.Vision.SyntheticImages.Make(32, 1));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(new MLExtensions.Vision.ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = MLExtensions.Tests.Vision.SyntheticImages.Size, ImageWidth = MLExtensions.Tests.Vision.SyntheticImages.Size,
            Epochs = 1, BatchSize = 16, Seed = 3, TestTimeFlip = true,
        }).Fit(data);
        var e = Assert.Throws<NotSupportedException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap }).Fit(data));
        Assert.StartsWith("DeepLiftShap cannot explain an image classifier trained with TestTimeFlip", e.Message);
    }
}
