using Microsoft.ML.OnnxRuntime;
using MLExtensions.Onnx;
using Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>Inputs the quantizer must refuse, with messages that say what to change.</summary>
public class QuantizationErrorTests
{
    private static readonly float[,] W = { { 0.5f, -1.2f }, { 0.2f, 2.0f } };
    private static readonly QuantizationOptions Static = new() { Mode = QuantizationMode.StaticInt8 };

    [Fact]
    public void ModelWithoutQuantizableNodesIsRefused()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.ReluOnly()));
        Assert.Contains("Nothing in the model can be quantized", e.Message);
        Assert.Contains("no node of the requested operator types (MatMul, Gemm, Conv, Gather)", e.Message);
    }

    [Theory]
    [InlineData(QuantizationMode.DynamicInt8)]
    [InlineData(QuantizationMode.StaticInt8)]
    public void MatMulOfTwoActivationsIsRefusedWithTheReason(QuantizationMode mode)
    {
        var calibration = new[] { new CalibrationSample().Add("A", new float[2], 1, 2).Add("B", new float[4], 2, 2) };
        var e = Assert.Throws<InvalidOperationException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.ActivationMatMul(), new QuantizationOptions { Mode = mode }, calibration));
        Assert.Contains("MatMul 'mm'", e.Message);
        Assert.Contains("not a float32 initializer", e.Message);
    }

    [Fact]
    public void ExcludedNodesStayFloatAndAreReported()
    {
        var options = new QuantizationOptions { ExcludedNodes = { "matmul" } };
        var e = Assert.Throws<InvalidOperationException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), options));
        Assert.Contains("excluded by QuantizationOptions.ExcludedNodes", e.Message);
    }

    [Fact]
    public void StaticModeWithoutCalibrationDataIsRefused()
    {
        var empty = Assert.Throws<ArgumentException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), Static, Array.Empty<CalibrationSample>()));
        Assert.Contains("needs calibration samples", empty.Message);
        Assert.Equal("calibration", empty.ParamName);
        Assert.Throws<ArgumentException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), Static, null));
    }

    public static TheoryData<CalibrationSample, string[]> BadSamples() => new()
    {
        { new CalibrationSample().Add("Z", new float[2], 1, 2), new[] { "Calibration sample 0", "'Z' that the model does not have", "inputs are: X" } },
        { new CalibrationSample().Add("X", new long[2], 1, 2), new[] { "input 'X'", "expected element type Float, found Int64" } },
        { new CalibrationSample().Add("X", new float[3], 1, 3), new[] { "input 'X'", "expected shape [1, 2]", "found [1, 3]" } },
        { new CalibrationSample().Add("X", new float[2], 2), new[] { "input 'X'", "expected shape [1, 2]", "found [2]" } },
    };

    [Theory]
    [MemberData(nameof(BadSamples))]
    public void CalibrationSampleThatDoesNotFitTheModelIsRefusedNamingTheInput(CalibrationSample sample, string[] fragments)
    {
        var good = new CalibrationSample().Add("X", new[] { 1f, 2f }, 1, 2);
        var e = Assert.Throws<ArgumentException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.MatMul(W), Static, new[] { good, sample }));
        foreach (string fragment in fragments)
            Assert.Contains(fragment.Replace("sample 0", "sample 1"), e.Message);
    }

    [Fact]
    public void SampleMissingAnInputIsRefused()
    {
        var sample = new CalibrationSample().Add("A", new float[2], 1, 2);
        var options = new QuantizationOptions { Mode = QuantizationMode.StaticInt8 };
        // A model with a weight MatMul reading A, and a second input B that the sample leaves out.
        var graph = new[] { TinyOnnxModels.Input("A", 1, 2), TinyOnnxModels.Input("B", 1, 2) };
        var model = TinyOnnxModels.Build(graph, "Y", new[] { TinyOnnxModels.Weight("W", W) },
            new NodeProto { OpType = "MatMul", Name = "mm", Input = { "A", "W" }, Output = { "P" } },
            new NodeProto { OpType = "Add", Name = "add", Input = { "P", "B" }, Output = { "Y" } });
        var e = Assert.Throws<ArgumentException>(() => OnnxQuantizer.Quantize(model, options, new[] { sample }));
        Assert.Contains("no value for the model input 'B' (expected Float [1, 2])", e.Message);
    }

    [Fact]
    public void BytesThatAreNotAModelAreRefused()
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxQuantizer.Quantize(new byte[] { 1, 2, 3, 4, 5 }));
        Assert.Contains("not an ONNX model", e.Message);
    }
}
