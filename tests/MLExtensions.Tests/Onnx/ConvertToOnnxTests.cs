using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx;

/// <summary>
/// ML.NET's own <c>ConvertToOnnx</c> exports pipelines that contain our networks (through ISaveAsOnnx), and the
/// exported pipeline, run by ONNX Runtime, reproduces ML.NET's Score and PredictedLabel columns.
/// </summary>
public class ConvertToOnnxTests
{
    private readonly ITestOutputHelper _log;

    public ConvertToOnnxTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void MapValueToKeyAndMulticlassMlpPipelineMatchesMlNet()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadWine(ml);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 16, 8 }, BatchNormalization = true, Epochs = 5, Seed = 1 }))
            .Fit(data);
        var onnx = Convert(ml, model, data);

        var features = OnnxTestData.ReadVectors(data, "Features");
        var labels = OnnxTestData.ReadScalars(data, "Label");
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(features.SelectMany(r => r).ToArray(), new[] { features.Length, 13 })),
            NamedOnnxValue.CreateFromTensor("Label", new DenseTensor<float>(labels, new[] { labels.Length, 1 })),
        };
        AssertMulticlassMatches(ml, model.Transform(data), onnx, inputs);
    }

    [Fact]
    public void BinaryMlpPipelineMatchesMlNet()
    {
        var ml = new MLContext(seed: 2);
        var data = TabularData.LoadBreastCancer(ml);
        var model = ml.Transforms.Conversion.ConvertType("Label", outputKind: DataKind.Boolean)
            .Append(ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Activation = Activation.GELU, Epochs = 3, Seed = 2 }))
            .Fit(data);
        var onnx = Convert(ml, model, data);
        var features = OnnxTestData.ReadVectors(data, "Features");
        var labels = OnnxTestData.ReadScalars(data, "Label");
        using var session = new InferenceSession(onnx);
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(features.SelectMany(r => r).ToArray(), new[] { features.Length, 30 })),
            NamedOnnxValue.CreateFromTensor("Label", new DenseTensor<float>(labels, new[] { labels.Length, 1 })),
        });
        var scored = model.Transform(data);
        var score = results.Single(r => r.Name == "Score.output").AsTensor<float>().ToArray();
        var probability = results.Single(r => r.Name == "Probability.output").AsTensor<float>().ToArray();
        var predicted = results.Single(r => r.Name == "PredictedLabel.output").AsTensor<bool>().ToArray();
        float scoreDelta = score.Zip(scored.GetColumn<float>("Score"), (a, b) => Math.Abs(a - b)).Max();
        float probabilityDelta = probability.Zip(scored.GetColumn<float>("Probability"), (a, b) => Math.Abs(a - b)).Max();
        _log.WriteLine($"binary MLP pipeline: max |Δ Score| = {scoreDelta:E2}, max |Δ Probability| = {probabilityDelta:E2}");
        Assert.True(scoreDelta <= 1e-4f && probabilityDelta <= 1e-4f, $"{scoreDelta} {probabilityDelta}");
        Assert.Equal(scored.GetColumn<bool>("PredictedLabel"), predicted);
    }

    [Fact]
    public void ByteImageCnnPipelineMatchesMlNet()
    {
        var ml = new MLContext(seed: 3);
        var rows = ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(64));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
            {
                ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = OnnxTestData.FashionSize, ImageWidth = OnnxTestData.FashionSize,
                Architecture = ImageArchitecture.DefaultCnn, Epochs = 1, Seed = 3,
            }))
            .Fit(rows);
        var onnx = Convert(ml, model, rows);
        var images = OnnxTestData.Fashion(64);
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("Pixels", new DenseTensor<byte>(images.SelectMany(r => r.Pixels).ToArray(), new[] { images.Count, 784 })),
            NamedOnnxValue.CreateFromTensor("Label", new DenseTensor<string>(images.Select(r => r.Label).ToArray(), new[] { images.Count, 1 })),
        };
        AssertMulticlassMatches(ml, model.Transform(rows), onnx, inputs);
    }

    [Fact]
    public void TextClassifierPipelineIsRefusedClearly()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(4).ToList());
        var model = TextExportTests.MiniLmClassifier(ml, data, maxLength: 16);
        using var stream = new MemoryStream();
        // CanSaveOnnx is false for text classifiers (tokenization cannot be expressed in ONNX), so ML.NET stops the walk
        // back through the pipeline and reports it cannot convert it.
        var e = Assert.ThrowsAny<Exception>(() => ml.Model.ConvertToOnnx(model, data, stream));
        Assert.Contains("can not be fully converted", e.Message);

    }

    private static byte[] Convert(MLContext ml, ITransformer model, IDataView data)
    {
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, data, stream);
        return stream.ToArray();
    }

    private void AssertMulticlassMatches(MLContext ml, IDataView scored, byte[] onnx, List<NamedOnnxValue> inputs)
    {
        using var session = new InferenceSession(onnx);
        using var results = session.Run(inputs);
        var score = results.Single(r => r.Name == "Score.output").AsTensor<float>();
        var predicted = results.Single(r => r.Name == "PredictedLabel.output").AsTensor<uint>().ToArray();
        var expectedScores = scored.GetColumn<float[]>("Score").ToArray();
        int k = expectedScores[0].Length;
        var actualScores = Enumerable.Range(0, expectedScores.Length).Select(i => score.ToArray().AsSpan(i * k, k).ToArray()).ToArray();
        float delta = OnnxTestData.MaxAbsDifference(expectedScores, actualScores);
        _log.WriteLine($"{expectedScores.Length} rows: max |Δ Score| = {delta:E2}");
        Assert.True(delta <= 1e-4f, $"max |Δ Score| = {delta}");
        Assert.Equal(scored.GetColumn<uint>("PredictedLabel"), predicted);
    }
}
