using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Onnx;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx;

/// <summary><c>mlContext.Model.Quantize</c> on trained networks: labels agree with the float model on real data, save/load, bad input.</summary>
public class QuantizeTests
{
    private readonly ITestOutputHelper _output;

    public QuantizeTests(ITestOutputHelper output) => _output = output;

    private static (MLContext Ml, IDataView Data, ITransformer Model) WineMlp()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadWine(ml);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 64, 32 }, Epochs = 60, Seed = 1 }))
            .Fit(data);
        return (ml, data, model);
    }

    private static double Agreement(IDataView a, IDataView b)
    {
        var left = a.GetColumn<uint>("PredictedLabel").ToList();
        var right = b.GetColumn<uint>("PredictedLabel").ToList();
        Assert.Equal(left.Count, right.Count);
        return left.Zip(right).Count(p => p.First == p.Second) / (double)left.Count;
    }

    [Theory]
    [InlineData(QuantizationMode.DynamicInt8)]
    [InlineData(QuantizationMode.StaticInt8)]
    [InlineData(QuantizationMode.Float16)]
    public void MlpPipelineKeepsItsPredictionsAndSurvivesSaveLoad(QuantizationMode mode)
    {
        var (ml, data, model) = WineMlp();

        var quantized = ml.Model.Quantize(model, data, new QuantizationOptions { Mode = mode }, out var summary);

        _output.WriteLine(summary.ToString());
        double agreement = Agreement(model.Transform(data), quantized.Transform(data));
        Assert.True(agreement >= 0.99, $"labels agree on {agreement:P2} of the 178 wine rows");
        Assert.Equal(128, summary.CalibrationRows);
        Assert.NotNull(summary.FloatAccuracy);   // the chain maps Label to a key, so accuracy is measured
        Assert.True(summary.QuantizedAccuracy >= summary.FloatAccuracy - 0.02);
        Assert.IsType<OnnxNetworkTransformer>(((TransformerChain<ITransformer>)quantized).LastTransformer);

        using var temp = new TempDirectory();
        ml.Model.Save(quantized, data.Schema, temp.File("quantized.zip"));
        var loaded = new MLContext().Model.Load(temp.File("quantized.zip"), out _);
        Assert.Equal(PredictionDump.Lines(quantized.Transform(data)), PredictionDump.Lines(loaded.Transform(data)));

        // PredictionEngine on the reloaded quantized model gives the same label as the batch transform, row by row.
        var engine = ml.Model.CreatePredictionEngine<WineRow, MulticlassPrediction>(loaded);
        var rows = ml.Data.CreateEnumerable<WineRow>(data, reuseRowObject: false).Take(20).ToList();
        var batch = loaded.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<uint>("PredictedLabel").ToList();
        Assert.Equal(batch, rows.Select(r => engine.Predict(r).PredictedLabel));
    }

    public sealed class WineRow
    {
        [VectorType(13)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    [Fact]
    public void StaticInt8CnnAgreesWithTheFloatCnnOnRealImages()
    {
        var ml = new MLContext(seed: 2);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(600)));
        var train = keys.Transform(ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(600)));
        var test = keys.Transform(ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(300, test: true)));
        var cnn = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = OnnxTestData.FashionSize, ImageWidth = OnnxTestData.FashionSize,
            Architecture = ImageArchitecture.DefaultCnn, Epochs = 3, Seed = 2,
        }).Fit(train);

        var quantized = ml.Model.Quantize(cnn, train, new QuantizationOptions { Mode = QuantizationMode.StaticInt8, MaxCalibrationRows = 64 }, out var summary);

        _output.WriteLine(summary.ToString());
        double agreement = Agreement(cnn.Transform(test), quantized.Transform(test));
        Assert.True(agreement >= 0.99, $"labels agree on {agreement:P2} of 300 test images");
        Assert.True(summary.Report.QuantizedNodes.GetValueOrDefault("Conv") >= 4, "every convolution is quantized");
        Assert.True(summary.Report.SizeRatio <= 0.30, $"size ratio {summary.Report.SizeRatio:P1}");
    }

    [Fact]
    public void CalibrationDataWithoutTheNetworksColumn()
    {
        var (ml, _, model) = WineMlp();
        var other = ml.Data.LoadFromEnumerable(new[] { new { Label = 1f, Other = 2f } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Model.Quantize(model, other, new QuantizationOptions()));
        Assert.Contains("The calibration data does not fit the network", e.Message);
        Assert.Contains("'Features'", e.Message);
    }

    [Fact]
    public void EmptyCalibrationData()
    {
        var (ml, data, model) = WineMlp();
        var empty = ml.Data.FilterRowsByColumn(data, "Label", lowerBound: 1000, upperBound: 2000); // no wine has class 1000
        var e = Assert.Throws<ArgumentException>(() => ml.Model.Quantize(model, empty, new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }));
        Assert.StartsWith("The calibration data has no rows", e.Message);
    }

    [Fact]
    public void NothingQuantizable()
    {
        var (ml, data, model) = WineMlp();
        var options = new QuantizationOptions { OperatorTypes = new List<string> { "Conv" } }; // an MLP has no convolutions
        var e = Assert.Throws<InvalidOperationException>(() => ml.Model.Quantize(model, data, options));
        _output.WriteLine(e.Message);
        Assert.Contains("nothing", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void NotANetworkOfThisLibrary()
    {
        var (ml, data, _) = WineMlp();
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(data);
        var e = Assert.Throws<ArgumentException>(() => ml.Model.Quantize(normalizer, data, new QuantizationOptions()));
        Assert.StartsWith("Quantize needs one of MLExtensions' trained networks", e.Message);
    }
}
