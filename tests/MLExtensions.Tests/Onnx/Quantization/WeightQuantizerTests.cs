using MLExtensions.Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>Weight quantization: round trip within half a step, per channel vs per tensor.</summary>
public class WeightQuantizerTests
{
    // Weights [4 channels, 50] whose channels differ in magnitude by up to 1000×, as in real layers with dead filters.
    private static (float[] Values, long[] Dims) Weights()
    {
        var random = new Random(3);
        float[] magnitude = { 1f, 0.1f, 0.01f, 0.001f };
        var values = new float[4 * 50];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * magnitude[i / 50];
        return (values, new long[] { 4, 50 });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PerChannelDequantizedWeightsAreWithinHalfAStepOfTheFloats(bool symmetric)
    {
        var (values, dims) = Weights();
        var q = WeightQuantizer.Quantize(values, dims, axis: 0, symmetric, -128, 127);
        var restored = q.Dequantize(dims);
        Assert.Equal(4, q.Parameters.Length);
        for (int i = 0; i < values.Length; i++)
        {
            var p = q.Parameters[i / 50];
            Assert.InRange(q.Codes[i], symmetric ? -127 : -128, 127);
            // Rounding to the nearest code is off by at most half a step (plus float32 rounding of the product).
            Assert.True(Math.Abs(restored[i] - values[i]) <= p.Scale / 2 * 1.0001f, $"element {i}: {values[i]} → {restored[i]}, scale {p.Scale}");
        }
        if (symmetric)
            Assert.All(q.Parameters, p => Assert.Equal(0, p.ZeroPoint));
    }

    [Fact]
    public void PerTensorScaleIsSetByTheLargestChannelAndWipesOutTheSmallest()
    {
        var (values, dims) = Weights();
        var perTensor = WeightQuantizer.Quantize(values, dims, axis: -1, symmetric: true, -128, 127);
        var perChannel = WeightQuantizer.Quantize(values, dims, axis: 0, symmetric: true, -128, 127);
        Assert.Single(perTensor.Parameters);
        // Channel 3 (|w| ≤ 0.001) is below half of one per-tensor step (≈ 1/127 / 2 = 0.0039): every code is 0.
        Assert.All(perTensor.Codes.Skip(150), c => Assert.Equal(0, c));
        // Per channel it uses the full code range.
        Assert.Equal(127, perChannel.Codes.Skip(150).Max(Math.Abs));
    }
}
