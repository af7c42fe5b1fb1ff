using MLExtensions.Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

public class QuantizationOptionsTests
{
    [Fact]
    public void DefaultsAreValid()
    {
        var options = new QuantizationOptions();
        options.Validate();
        Assert.Equal(QuantizationMode.DynamicInt8, options.Mode);
        Assert.True(options.PerChannel);
        Assert.Equal(new[] { "MatMul", "Gemm", "Conv", "Gather" }, options.OperatorTypes);
    }

    public static TheoryData<Action<QuantizationOptions>, string, string> OutOfRange() => new()
    {
        { o => o.Percentile = 40, nameof(QuantizationOptions.Percentile), "(50, 100]" },
        { o => o.Percentile = double.NaN, nameof(QuantizationOptions.Percentile), "(50, 100]" },
        { o => o.HistogramBins = 3, nameof(QuantizationOptions.HistogramBins), "[16, 1048576]" },
        { o => o.MaxCalibrationRows = 0, nameof(QuantizationOptions.MaxCalibrationRows), "[1, 1000000]" },
        { o => o.Mode = (QuantizationMode)7, nameof(QuantizationOptions.Mode), "DynamicInt8" },
        { o => o.Calibration = (CalibrationMethod)7, nameof(QuantizationOptions.Calibration), "Percentile" },
        { o => o.OperatorTypes = new List<string> { "Relu" }, nameof(QuantizationOptions.OperatorTypes), "'Relu' cannot be quantized" },
        { o => o.OperatorTypes = new List<string>(), nameof(QuantizationOptions.OperatorTypes), "is empty" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void OutOfRangeOptionsAreRejectedWithTheOptionNamed(Action<QuantizationOptions> change, string parameter, string message)
    {
        var options = new QuantizationOptions();
        change(options);
        var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(message, e.Message);
        // Quantize validates before touching the model.
        Assert.Throws<ArgumentOutOfRangeException>(() => OnnxQuantizer.Quantize(TinyOnnxModels.ReluOnly(), options));
    }
}
