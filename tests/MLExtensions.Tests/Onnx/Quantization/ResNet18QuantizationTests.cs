using System.IO.Compression;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Onnx;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>
/// The ImageNet ResNet-18 ONNX from ML.NET's DnnImageFeaturizer package (CNTK export, opset 8, unfolded batch norms),
/// quantized once per mode. Inputs: real Fashion-MNIST test images, enlarged to 224×224 and coloured, then ML.NET's
/// own preprocessing model (BGR, mean image subtracted).
/// </summary>
public sealed class ResNet18QuantizationFixture
{
    private static readonly long[] InputShape = { 1, 3, 224, 224 };

    public ResNet18QuantizationFixture()
    {
        FloatModel = File.ReadAllBytes(ResNet18OnnxWeights.Locate());
        var images = PreparedImages(16);
        var calibration = images.Take(8).Select(x => new CalibrationSample().Add("Input247", x, InputShape)).ToList();
        Test = images.Skip(8).ToList();
        Dynamic = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 });
        StaticMinMax = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }, calibration);
        StaticPercentile = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.StaticInt8, Calibration = CalibrationMethod.Percentile, Percentile = 99.99 }, calibration);
        Float16 = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.Float16 });
        FloatFeatures = Features(FloatModel);
    }

    public byte[] FloatModel { get; }

    public List<float[]> Test { get; }

    public QuantizationResult Dynamic { get; }

    public QuantizationResult StaticMinMax { get; }

    public QuantizationResult StaticPercentile { get; }

    public QuantizationResult Float16 { get; }

    public List<float[]> FloatFeatures { get; }

    /// <summary>The 512 pooled features of each test image.</summary>
    public List<float[]> Features(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2 };
        using var session = new InferenceSession(model, options);
        return Test.Select(x => RunFirst(session, "Input247", x)).ToList();
    }

    private static float[] RunFirst(InferenceSession session, string input, float[] values)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(values, InputShape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { input }, new[] { value }, new[] { session.OutputNames[0] });
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>Fashion-MNIST test images 0.., 28×28 grey → 224×224 (each pixel repeated 8×8) → three different channel mixes → ML.NET's preprocessing.</summary>
    private static List<float[]> PreparedImages(int count)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "TestData", "FashionMnist", "t10k-images-idx3-ubyte.gz");
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var buffer = new MemoryStream();
        gz.CopyTo(buffer);
        var bytes = buffer.ToArray();
        using var preprocess = new InferenceSession(ResNet18OnnxWeights.LocatePreprocess());
        var result = new List<float[]>();
        for (int n = 0; n < count; n++)
        {
            var rgb = new float[3 * 224 * 224];
            for (int y = 0; y < 224; y++)
            {
                for (int x = 0; x < 224; x++)
                {
                    float v = bytes[16 + n * 784 + y / 8 * 28 + x / 8];
                    rgb[y * 224 + x] = v;
                    rgb[224 * 224 + y * 224 + x] = v * 0.6f + 40;
                    rgb[2 * 224 * 224 + y * 224 + x] = 255 - v * 0.8f;
                }
            }
            result.Add(RunFirst(preprocess, "OriginalInput", rgb));
        }
        return result;
    }
}

public class ResNet18QuantizationTests : IClassFixture<ResNet18QuantizationFixture>
{
    private readonly ResNet18QuantizationFixture _model;
    private readonly ITestOutputHelper _output;

    public ResNet18QuantizationTests(ResNet18QuantizationFixture model, ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    // The model ends at the pooled features (no classifier), so agreement is measured on them. A linear head's logits
    // are dot products with these features, so a cosine ≥ 0.99 bounds the relative change of every such logit direction
    // to about sqrt(2·(1 − 0.99)) ≈ 14 % of the feature norm in the worst case; measured values are well above (≈ 0.999).
    // Different images give cosines of about 0.7–0.9 here, so the floor separates "same image" from "another image".
    [Theory]
    [InlineData("dynamic", 0.99)]
    [InlineData("static-minmax", 0.99)]
    [InlineData("static-percentile", 0.99)]
    [InlineData("float16", 0.9999)]
    public void FeaturesOfRealImagesAgreeWithTheFloatModel(string variant, double minCosine)
    {
        var result = variant switch
        {
            "dynamic" => _model.Dynamic,
            "static-minmax" => _model.StaticMinMax,
            "static-percentile" => _model.StaticPercentile,
            _ => _model.Float16,
        };
        // Fashion-MNIST items of one class are near-ties for "nearest other image", so one flip in eight is allowed.
        RealModelMetrics.AssertFollows(_model.FloatFeatures, _model.Features(result.Model), result.Report, _output, variant,
            minCosine, meanCosine: minCosine, minAgreement: 6.0 / 8, distinctCosine: 0.99);
    }

    [Fact]
    public void Int8ModelsAreAtMostThirtyPercentOfTheFloatModel()
    {
        foreach (var result in new[] { _model.Dynamic, _model.StaticMinMax })
        {
            _output.WriteLine(result.Report.ToString());
            Assert.True(result.Report.SizeRatio <= 0.30, $"size ratio {result.Report.SizeRatio:P1}");
            // 22 convolutions (stem, 9 basic blocks × 2, 3 projections), batch norms folded into them first.
            Assert.Equal(22, result.Report.QuantizedNodes["Conv"]);
            Assert.Empty(result.Report.SkippedNodes);
        }
    }

    [Fact]
    public void PercentileRangesAreInsideTheMinMaxRangesAndNarrowerWhereThereAreOutliers()
    {
        var minMax = _model.StaticMinMax.Report.ActivationRanges;
        var percentile = _model.StaticPercentile.Report.ActivationRanges;
        Assert.Equal(minMax.Keys.Order(), percentile.Keys.Order());
        int narrower = 0;
        foreach (var (tensor, (min, max)) in minMax)
        {
            var (pMin, pMax) = percentile[tensor];
            // The histogram spans [min, max], so the percentile range cannot leave it.
            Assert.InRange(pMin, min, max);
            Assert.InRange(pMax, min, max);
            Assert.True(pMax > pMin, tensor);
            if (pMax - pMin < 0.9 * (max - min))
                narrower++;
        }
        _output.WriteLine($"{narrower} of {minMax.Count} ranges at least 10 % narrower with the 99.99th percentile");
        Assert.True(narrower > 0);
    }
}
