using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx;

/// <summary>
/// The exported ONNX model, run by ONNX Runtime, gives the same outputs as the TorchSharp transformer on real data:
/// logits against the network's forward pass, probabilities against ML.NET's Score/Probability columns.
/// </summary>
public class ExportEquivalenceTests
{
    private const float Tolerance = 1e-4f;
    private readonly ITestOutputHelper _log;

    public ExportEquivalenceTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void MulticlassMlpOnWineMatches()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 16, 8 }, Epochs = 5, Seed = 1 }).Fit(data);
        AssertEquivalent(ml, model, data, "features", "Features");
    }

    [Fact]
    public void BinaryMlpWithBatchNormAndMixedActivationsMatches()
    {
        var ml = new MLContext(seed: 2);
        var data = TabularData.LoadBreastCancer(ml);
        var boolData = ml.Transforms.CustomMapping<LabelIn, LabelOut>((i, o) => o.IsBenign = i.Label > 0.5f, null).Fit(data).Transform(data);
        var model = ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
        {
            LabelColumnName = "IsBenign",
            HiddenLayers = new[] { 16, 16, 8, 8 },
            LayerActivations = new[] { Activation.GELU, Activation.LeakyReLU, Activation.Tanh, Activation.Sigmoid },
            BatchNormalization = true,
            Epochs = 5,
            Seed = 2,
        }).Fit(boolData);
        AssertEquivalent(ml, model, boolData, "features", "Features");
    }

    [Fact]
    public void RegressionMlpWithoutScalingMatches()
    {
        var ml = new MLContext(seed: 3);
        var data = TabularData.LoadWine(ml);
        var model = ml.Regression.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, FeatureScaling = FeatureScaling.None, Epochs = 3, Seed = 3 }).Fit(data);
        AssertEquivalent(ml, model, data, "features", "Features");
    }

    [Theory]
    [InlineData(ImageArchitecture.DefaultCnn)]
    [InlineData(ImageArchitecture.LeNet5)]
    [InlineData(ImageArchitecture.ResNet20)]
    public void ImageClassifierOnFashionMnistMatches(ImageArchitecture architecture)
    {
        var ml = new MLContext(seed: 4);
        var (model, _, keys) = OnnxTestData.FashionClassifier(ml, 96, seed: 4, o => o.Architecture = architecture);
        var test = ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(24, test: true));
        AssertEquivalent(ml, model, keys.Transform(test), "pixels", "Pixels");
    }

    [Fact]
    public void MirrorAveragingImageClassifierMatches()
    {
        // TestTimeFlip: the graph stacks each image with its mirror, runs the network once and averages the logits.
        var ml = new MLContext(seed: 6);
        var (model, data, _) = OnnxTestData.FashionClassifier(ml, 64, seed: 6, o => o.TestTimeFlip = true);
        Assert.True(((ImageClassifierTransformer)model).Classifier.AveragesMirroredView);
        AssertEquivalent(ml, model, data, "pixels", "Pixels");
    }

    [Fact]
    public void ResizingGreyToRgbImageNetworkMatches()
    {
        // ResNet-18 with the small-input stem fed 28×28 grey images resized to 32×32 RGB: covers the preprocessing
        // graph (grey → RGB expand, bilinear resize) and the downsampling basic blocks. Freshly initialised.
        var ml = new MLContext(seed: 5);
        var (model, data, _) = OnnxTestData.FashionClassifier(ml, 40, seed: 5, o =>
        {
            o.Architecture = ImageArchitecture.ResNet18;
            o.InputSize = 32;
            o.Network.SmallInputStem = true;
            o.Network.ResNetBlocksPerStage = new[] { 1, 1, 1, 1 };
            o.BatchSize = 40;
        });
        Assert.True(((ImageClassifierTransformer)model).Classifier.Preprocess.Resizes);
        AssertEquivalent(ml, model, data, "pixels", "Pixels");
    }

    private void AssertEquivalent(MLContext ml, ITransformer model, IDataView data, string onnxInput, string column)
    {
        var network = (NetworkTransformerBase)model;
        using var temp = new TempDirectory();
        string path = temp.File("model.onnx");
        ml.Model.ExportToOnnx(model, data.Schema, path);

        var inputs = OnnxTestData.ReadVectors(data, column);
        var onnx = OnnxTestData.Run(path, onnxInput, inputs);
        using (var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path))
        {
            var metadata = session.ModelMetadata.CustomMetadataMap;
            Assert.Equal(network.Kind.ToString(), metadata["task"]);
            if (network.ClassNames is { } names)
                Assert.Equal(names, System.Text.Json.JsonSerializer.Deserialize<string[]>(metadata["class_names"]));
            else
                Assert.False(metadata.ContainsKey("class_names"));
        }

        // Logits: the TorchSharp forward pass on the same batch.
        float[][] logits;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var batch = torch.tensor(inputs.SelectMany(r => r).ToArray(), new long[] { inputs.Length, inputs[0].Length });
            logits = TensorRows.Of(network.Network.call(batch));
        }
        float logitDelta = OnnxTestData.MaxAbsDifference(logits, onnx["logits"]);

        // Probabilities: ML.NET's own output columns, row by row through the transformer's getters.
        var scored = model.Transform(data);
        float probabilityDelta = 0;
        switch (network.Kind)
        {
            case PredictionTask.MulticlassClassification:
                var scores = scored.GetColumn<float[]>("Score").ToArray();
                probabilityDelta = OnnxTestData.MaxAbsDifference(scores, onnx["probabilities"]);
                break;
            case PredictionTask.BinaryClassification:
                var probabilities = OnnxTestData.ReadScalars(scored, "Probability").Select(p => new[] { p }).ToArray();
                probabilityDelta = OnnxTestData.MaxAbsDifference(probabilities, onnx["probabilities"]);
                break;
            default:
                Assert.False(onnx.ContainsKey("probabilities"));
                var predictions = OnnxTestData.ReadScalars(scored, "Score").Select(p => new[] { p }).ToArray();
                probabilityDelta = OnnxTestData.MaxAbsDifference(predictions, onnx["logits"]);
                break;
        }
        _log.WriteLine($"{network.Network.GetType().Name} {network.Kind}: {inputs.Length} rows, max |Δ logits| = {logitDelta:E2}, max |Δ ML.NET output| = {probabilityDelta:E2}");
        Assert.True(logitDelta <= Tolerance, $"max |Δ logits| = {logitDelta}");
        Assert.True(probabilityDelta <= Tolerance, $"max |Δ probabilities| = {probabilityDelta}");
        // The outputs must not be trivially equal (e.g. all zero): the classes must differ somewhere.
        Assert.True(onnx["logits"].Select(r => r[0]).Distinct().Count() > 1, "the logits do not depend on the input");
    }

    private sealed class LabelIn
    {
        public float Label { get; set; }
    }

    private sealed class LabelOut
    {
        public bool IsBenign { get; set; }
    }
}
