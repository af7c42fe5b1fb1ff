using Onnx;
using static MLExtensions.Onnx.QuantizedRange;

namespace MLExtensions.Onnx;

/// <summary>Writes quantized weights, scales and zero points as initializers.</summary>
internal static class WeightInitializers
{
    /// <summary>Int8 codes with the weight's shape.</summary>
    public static string Int8Codes(QuantizationGraph graph, string stem, QuantizedWeight weight, long[] dims) =>
        graph.AddInitializer($"{stem}_quantized", TensorProto.Types.DataType.Int8, dims, weight.CodesAsInt8());

    /// <summary>Uint8 codes with the weight's shape.</summary>
    public static string UInt8Codes(QuantizationGraph graph, string stem, QuantizedWeight weight, long[] dims) =>
        graph.AddInitializer($"{stem}_quantized", TensorProto.Types.DataType.Uint8, dims, weight.CodesAsUInt8());

    /// <summary>The scales, multiplied by <paramref name="factor"/>, with shape <paramref name="dims"/> (a scalar when empty).</summary>
    public static string Scales(QuantizationGraph graph, string stem, QuantizedWeight weight, long[] dims, float factor = 1f) =>
        graph.AddFloats($"{stem}_scale", dims, weight.Scales.Select(s => s * factor).ToArray());

    /// <summary>Zero points as int8 (shape as given).</summary>
    public static string Int8ZeroPoints(QuantizationGraph graph, string stem, QuantizedWeight weight, long[] dims) =>
        graph.AddInitializer($"{stem}_zero_point", TensorProto.Types.DataType.Int8, dims, weight.Parameters.Select(p => unchecked((byte)(sbyte)p.ZeroPoint)).ToArray());

    /// <summary>Zero points as uint8 (shape as given).</summary>
    public static string UInt8ZeroPoints(QuantizationGraph graph, string stem, QuantizedWeight weight, long[] dims) =>
        graph.AddInitializer($"{stem}_zero_point", TensorProto.Types.DataType.Uint8, dims, weight.Parameters.Select(p => (byte)p.ZeroPoint).ToArray());

    /// <summary>Quantizes a weight to int8 along <paramref name="axis"/> (per channel) or per tensor as the options say.</summary>
    public static QuantizedWeight Int8(float[] values, long[] dims, int axis, QuantizationOptions options) =>
        WeightQuantizer.Quantize(values, dims, options.PerChannel ? axis : -1, options.SymmetricWeights, Int8Min, Int8Max);

    /// <summary>The shape of one scale per channel along <paramref name="axis"/>, broadcastable against a tensor of rank <paramref name="rank"/>.</summary>
    public static long[] BroadcastShape(int rank, int axis, long channels)
    {
        var shape = Enumerable.Repeat(1L, rank).ToArray();
        shape[axis] = channels;
        return shape;
    }
}
