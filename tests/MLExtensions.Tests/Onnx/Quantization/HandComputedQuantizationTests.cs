using MLExtensions.Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>
/// One-node models whose int8 results are worked out by hand below (ONNX's formulas: q = saturate(round_half_even(x / s) + zp),
/// x' = (q − zp) × s). The numbers are picked so that no rounding lands on a tie.
/// </summary>
public class HandComputedQuantizationTests
{
    // W[K=2, N=2]; per output column, symmetric int8 (scale = max|w| / 127):
    //   column 0 = [0.5, 0.2]:  s0 = 0.5/127, codes [127, round(50.8) = 51]
    //   column 1 = [-1.2, 2.0]: s1 = 2/127,   codes [round(-76.2) = -76, 127]
    private static readonly float[,] W = { { 0.5f, -1.2f }, { 0.2f, 2.0f } };

    // X = [2.0, -0.55]: the uint8 range [-0.55, 2.0] gives s = 2.55/255 = 0.01, zp = round(55) = 55, codes [255, 0],
    // which represent X exactly. Integer products Σ (xq − 55)·wq: column 0: 200·127 + (−55)·51 = 22595;
    // column 1: 200·(−76) + (−55)·127 = −22185. The float product is [0.89, −3.5].
    private static readonly float[] X = { 2.0f, -0.55f };
    private static readonly float[] Expected = { 22595 * 0.01f * (0.5f / 127), -22185 * 0.01f * (2f / 127) };

    [Fact]
    public void DynamicMatMulGivesTheHandComputedInt8Result()
    {
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 });
        var y = TinyOnnxModels.Run(result.Model, ("X", X, new long[] { 1, 2 }));

        Assert.Equal(Expected[0], y[0], 5);
        Assert.Equal(Expected[1], y[1], 5);
        // Not the float result: the weight rounding is visible (0.8896 vs 0.89, −3.4937 vs −3.5).
        Assert.True(Math.Abs(y[1] - -3.5f) > 5e-3, $"{y[1]}");
        Assert.Equal(1, result.Report.QuantizedNodes["MatMul"]);
    }

    [Fact]
    public void StaticMatMulUsesTheCalibratedRangeAndSaturatesOutsideIt()
    {
        var calibration = new[] { new CalibrationSample().Add("X", X, 1, 2) };
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }, calibration);

        Assert.Equal((-0.55f, 2.0f), result.Report.ActivationRanges["X"]);
        var y = TinyOnnxModels.Run(result.Model, ("X", X, new long[] { 1, 2 }));
        Assert.Equal(Expected[0], y[0], 5);
        Assert.Equal(Expected[1], y[1], 5);

        // X2 = [1.0, 3.0]: with the fixed scale 0.01 and zp 55, 1.0 → code 155 and 3.0 saturates at 255 (= 2.0).
        // Column 0: (100·127 + 200·51)·0.01·s0 = 22900·0.01·0.5/127; column 1: (100·(−76) + 200·127)·0.01·2/127 = 17800·0.01·2/127.
        var y2 = TinyOnnxModels.Run(result.Model, ("X", new[] { 1.0f, 3.0f }, new long[] { 1, 2 }));
        Assert.Equal(22900 * 0.01f * (0.5f / 127), y2[0], 5);
        Assert.Equal(17800 * 0.01f * (2f / 127), y2[1], 5);
    }

    [Theory]
    [InlineData(QuantizationMode.DynamicInt8)]
    [InlineData(QuantizationMode.StaticInt8)]
    public void ConvWithPerChannelWeightsAndBiasGivesTheHandComputedResult(QuantizationMode mode)
    {
        // The same numbers as a 1×1 Conv: output channel m uses W's column m as its filter over the 2 input channels.
        var filters = new float[,] { { 0.5f, 0.2f }, { -1.2f, 2.0f } };
        var bias = new[] { 0.125f, -0.25f };
        var calibration = new[] { new CalibrationSample().Add("X", X, 1, 2, 1, 1) };
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.Conv1x1(filters, bias), new QuantizationOptions { Mode = mode }, calibration);
        var y = TinyOnnxModels.Run(result.Model, ("X", X, new long[] { 1, 2, 1, 1 }));

        // Static mode also rounds the bias to int32 at scale 0.01·s_m: 0.125/(0.01·0.5/127) = 3175 exactly and
        // −0.25/(0.01·2/127) = −1587.5 → −1588 (half to even), i.e. −0.2500787.
        float bias1 = mode == QuantizationMode.StaticInt8 ? -1588 * 0.01f * (2f / 127) : -0.25f;
        Assert.Equal(Expected[0] + 0.125f, y[0], 5);
        Assert.Equal(Expected[1] + bias1, y[1], 5);
        Assert.Equal(1, result.Report.QuantizedNodes["Conv"]);
    }

    [Fact]
    public void AsymmetricWeightsUsePerColumnZeroPoints()
    {
        // Asymmetric int8 per column over [min(0, w), max(0, w)]:
        //   column 0 over [0, 0.5]:    s0 = 0.5/255, zp = −128; codes 0.5 → 255 − 128 = 127, 0.2 → 102 − 128 = −26
        //   column 1 over [−1.2, 2.0]: s1 = 3.2/255, zp = round(−128 + 95.625) = −32; codes −1.2 → −96 − 32 = −128, 2.0 → 159 − 32 = 127
        // Σ (xq − 55)(wq − zp): column 0: 200·255 + (−55)·102 = 45390; column 1: 200·(−96) + (−55)·159 = −27945.
        var options = new QuantizationOptions { Mode = QuantizationMode.DynamicInt8, SymmetricWeights = false };
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), options);
        var y = TinyOnnxModels.Run(result.Model, ("X", X, new long[] { 1, 2 }));
        Assert.Equal(45390 * 0.01f * (0.5f / 255), y[0], 5);
        Assert.Equal(-27945 * 0.01f * (3.2f / 255), y[1], 5);
    }

    [Fact]
    public void SymmetricActivationsUseInt8WithZeroPointZero()
    {
        // Calibrated X range [−0.55, 2.0] → symmetric int8: s = 2/127, zp = 0; codes 2.0 → 127, −0.55 → round(−34.925) = −35.
        // Σ xq·wq: column 0: 127·127 + (−35)·51 = 14344; column 1: 127·(−76) + (−35)·127 = −14097.
        var options = new QuantizationOptions { Mode = QuantizationMode.StaticInt8, SymmetricActivations = true };
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), options, new[] { new CalibrationSample().Add("X", X, 1, 2) });
        var y = TinyOnnxModels.Run(result.Model, ("X", X, new long[] { 1, 2 }));
        Assert.Equal(14344 * (2f / 127) * (0.5f / 127), y[0], 5);
        Assert.Equal(-14097 * (2f / 127) * (2f / 127), y[1], 5);
    }

    [Fact]
    public void OnlyTheFirstMaxCalibrationRowsSamplesAreUsed()
    {
        // The second sample would widen the range to 10 (and has the wrong shape); with MaxCalibrationRows = 1 it is never read.
        var samples = new[] { new CalibrationSample().Add("X", X, 1, 2), new CalibrationSample().Add("X", new[] { 10f, 10f, 10f }, 1, 3) };
        var options = new QuantizationOptions { Mode = QuantizationMode.StaticInt8, MaxCalibrationRows = 1 };
        var result = OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), options, samples);
        Assert.Equal((-0.55f, 2.0f), result.Report.ActivationRanges["X"]);
        options.MaxCalibrationRows = 2;
        Assert.Throws<ArgumentException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), options, samples));
    }
}
