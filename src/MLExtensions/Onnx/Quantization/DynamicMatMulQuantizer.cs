using Onnx;
using static MLExtensions.Onnx.QuantizationGraph;

namespace MLExtensions.Onnx;

/// <summary>
/// Dynamic int8 MatMul and Gemm: A → DynamicQuantizeLinear (uint8, per call) → MatMulInteger with int8 weights
/// (one scale per output column) → Cast → × (scale of A × weight scales) [→ + bias]. This is the standard-ONNX
/// pattern that ONNX Runtime's CPU provider fuses into its <c>DynamicQuantizeMatMul</c> kernel, so the model stays
/// portable and still gets the fused kernel.
/// </summary>
internal sealed class DynamicMatMulQuantizer : IOperatorQuantizer
{
    private readonly QuantizationOptions _options;

    public DynamicMatMulQuantizer(QuantizationOptions options, string operatorType)
    {
        _options = options;
        OperatorType = operatorType;
    }

    public string OperatorType { get; }

    public string? TryQuantize(QuantizationGraph graph, NodeProto node)
    {
        if (OperatorType == "Gemm")
            return TryGemm(graph, node);
        var weight = graph.FloatInitializer(node.Input[1], out var dims);
        if (weight is null)
            return "the second input is not a float32 initializer (activation × activation products stay float)";
        if (dims.Length != 2)
            return $"the weight has rank {dims.Length}; only 2-D weights [K, N] are quantized";
        Emit(graph, node, node.Input[0], weight, dims, alpha: 1f, bias: null);
        return null;
    }

    private string? TryGemm(QuantizationGraph graph, NodeProto node)
    {
        if (IntAttribute(node, "transA", 0) != 0)
            return "transA = 1 (a transposed activation would need an extra Transpose; left in float)";
        var weight = graph.FloatInitializer(node.Input[1], out var dims);
        if (weight is null || dims.Length != 2)
            return "B is not a 2-D float32 initializer";
        if (IntAttribute(node, "transB", 0) != 0)
        {
            // Store the weight as [K, N] so that MatMulInteger computes A × B directly.
            weight = Transpose(weight, dims[0], dims[1]);
            dims = new[] { dims[1], dims[0] };
        }
        string? bias = null;
        if (node.Input.Count > 2 && node.Input[2].Length > 0)
        {
            float beta = FloatAttribute(node, "beta", 1f);
            var c = graph.FloatInitializer(node.Input[2], out var cDims);
            if (c is null)
            {
                if (beta != 1f)
                    return "C is computed at run time and beta ≠ 1";
                bias = node.Input[2];
            }
            else
            {
                bias = graph.AddFloats($"{node.Input[2]}_beta", cDims, c.Select(v => v * beta).ToArray());
            }
        }
        Emit(graph, node, node.Input[0], weight, dims, FloatAttribute(node, "alpha", 1f), bias);
        return null;
    }

    private void Emit(QuantizationGraph graph, NodeProto node, string input, float[] weight, long[] dims, float alpha, string? bias)
    {
        string stem = node.Input[1];
        var q = WeightInitializers.Int8(weight, dims, axis: 1, _options);
        string codes = WeightInitializers.Int8Codes(graph, stem, q, dims);
        long[] paramDims = q.Axis < 0 ? Array.Empty<long>() : new[] { dims[1] };
        string scales = WeightInitializers.Scales(graph, stem, q, paramDims, alpha);
        var inputs = graph.AddNode("DynamicQuantizeLinear", stem, new[] { input }, outputs: 3);
        var matmulInputs = new List<string> { inputs[0], codes, inputs[2] };
        // Symmetric weights have zero point 0, which is MatMulInteger's default; leaving it out keeps the fused kernel's fast path.
        if (!_options.SymmetricWeights)
            matmulInputs.Add(WeightInitializers.Int8ZeroPoints(graph, stem, q, paramDims));
        string product = graph.AddNode("MatMulInteger", stem, matmulInputs)[0];
        string asFloat = graph.AddNode("Cast", stem, new[] { product }, attributes: IntAttr("to", (long)TensorProto.Types.DataType.Float))[0];
        string scale = graph.AddNode("Mul", $"{stem}_scale", new[] { inputs[1], scales })[0];
        if (bias is null)
        {
            graph.AddNodeWithOutputs("Mul", stem, new[] { asFloat, scale }, node.Output);
        }
        else
        {
            string scaled = graph.AddNode("Mul", stem, new[] { asFloat, scale })[0];
            graph.AddNodeWithOutputs("Add", stem, new[] { scaled, bias }, node.Output);
        }
        graph.RemoveNode(node);
    }

    /// <summary>Transposes a row-major [rows, columns] matrix.</summary>
    internal static float[] Transpose(float[] values, long rows, long columns)
    {
        var result = new float[values.Length];
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < columns; c++)
                result[c * rows + r] = values[r * columns + c];
        return result;
    }
}
