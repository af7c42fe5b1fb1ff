using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Onnx;
using Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>Gemm attribute handling and float16 conversion on small synthetic models, compared with the float model.</summary>
public class GemmAndFloat16Tests
{
    private const int K = 16, N = 8;

    private static byte[] Gemm(bool transA, bool transB, float alpha, float beta)
    {
        var random = new Random(11);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var b = TinyOnnxModels.Tensor("B", transB ? new long[] { N, K } : new long[] { K, N }, Random(K * N));
        var c = TinyOnnxModels.Tensor("C", new long[] { N }, Random(N));
        var node = new NodeProto { OpType = "Gemm", Name = "gemm", Input = { "A", "B", "C" }, Output = { "Y" } };
        node.Attribute.Add(new AttributeProto { Name = "transA", Type = AttributeProto.Types.AttributeType.Int, I = transA ? 1 : 0 });
        node.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = transB ? 1 : 0 });
        node.Attribute.Add(new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = alpha });
        node.Attribute.Add(new AttributeProto { Name = "beta", Type = AttributeProto.Types.AttributeType.Float, F = beta });
        var input = transA ? TinyOnnxModels.Input("A", K, 3) : TinyOnnxModels.Input("A", 3, K);
        return TinyOnnxModels.Build(new[] { input }, "Y", new[] { b, c }, node);
    }

    private static float[] Inputs() => Enumerable.Range(0, 3 * K).Select(i => (float)Math.Sin(i)).ToArray();

    [Theory]
    [InlineData(QuantizationMode.DynamicInt8, false)]
    [InlineData(QuantizationMode.DynamicInt8, true)]
    [InlineData(QuantizationMode.StaticInt8, false)]
    [InlineData(QuantizationMode.StaticInt8, true)]
    public void GemmWithTransposeAlphaAndBetaMatchesTheFloatModel(QuantizationMode mode, bool transB)
    {
        var model = Gemm(transA: false, transB, alpha: 0.5f, beta: 2f);
        var x = Inputs();
        var calibration = new[] { new CalibrationSample().Add("A", x, 3, K) };
        var result = OnnxQuantizer.Quantize(model, new QuantizationOptions { Mode = mode }, calibration);
        var expected = TinyOnnxModels.Run(model, ("A", x, new long[] { 3, K }));
        var actual = TinyOnnxModels.Run(result.Model, ("A", x, new long[] { 3, K }));

        // Error bound: each of the K products is off by at most |x|·s_w/2 + |w|·s_x/2 (+ the product of both halves);
        // with |x| ≤ 1, |w| ≤ 1, s_w ≤ 1/127 and s_x ≤ 2/255, times alpha 0.5: K · (0.0039 + 0.0039 + ~0) · 0.5 ≈ 0.063.
        // A wrong transpose, alpha or beta would be off by O(1).
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) < 0.063, $"element {i}: float {expected[i]}, quantized {actual[i]}");
        Assert.Equal(1, result.Report.QuantizedNodes["Gemm"]);
    }

    [Fact]
    public void GemmWithTransposedActivationStaysFloatWithAReason()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OnnxQuantizer.Quantize(Gemm(transA: true, transB: false, 1f, 1f)));
        Assert.Contains("Gemm 'gemm': transA = 1", e.Message);
    }

    [Fact]
    public void Float16KeepsFloat32InputsAndOutputsAndHalvesTheWeights()
    {
        var model = Gemm(transA: false, transB: true, alpha: 0.5f, beta: 2f);
        var result = OnnxQuantizer.Quantize(model, new QuantizationOptions { Mode = QuantizationMode.Float16 });
        using (var session = new InferenceSession(result.Model))
        {
            Assert.Equal(TensorElementType.Float, session.InputMetadata["A"].ElementDataType);
            Assert.Equal(TensorElementType.Float, session.OutputMetadata["Y"].ElementDataType);
        }
        var weights = ModelProto.Parser.ParseFrom(result.Model).Graph.Initializer;
        Assert.All(weights, w => Assert.Equal((int)TensorProto.Types.DataType.Float16, w.DataType));

        var x = Inputs();
        var expected = TinyOnnxModels.Run(model, ("A", x, new long[] { 3, K }));
        var actual = TinyOnnxModels.Run(result.Model, ("A", x, new long[] { 3, K }));
        // Float16 has an 11-bit significand (relative step 2^-11 ≈ 4.9e-4); |y| here is below 8, so rounding of inputs,
        // weights and result stays under about 8 · 3 · 4.9e-4 ≈ 0.012; int8 would be off by up to 0.06.
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) < 0.012, $"element {i}: float {expected[i]}, float16 {actual[i]}");
        Assert.NotEqual(expected, actual);
    }
}
