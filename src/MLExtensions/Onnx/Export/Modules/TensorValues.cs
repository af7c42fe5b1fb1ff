using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>Copies TorchSharp weights into the flat row-major arrays ONNX initializers hold.</summary>
internal static class TensorValues
{
    /// <summary>The values of <paramref name="tensor"/> as float32, row-major, whatever its device, dtype or strides.</summary>
    public static float[] Floats(Tensor tensor)
    {
        using var noGrad = TorchSharp.torch.no_grad();
        using var scope = NewDisposeScope();
        return tensor.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }

    /// <summary>The values of an integer tensor as int64.</summary>
    public static long[] Longs(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        return tensor.detach().cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
    }

    /// <summary>Adds <paramref name="tensor"/> as a float initializer with its own shape.</summary>
    public static string AddFloats(this IOnnxGraphWriter writer, string nameHint, Tensor tensor) =>
        writer.AddInitializer(nameHint, Floats(tensor), tensor.shape);

    /// <summary>Adds <paramref name="tensor"/> as a float initializer with the shape <paramref name="dims"/> (same element count).</summary>
    public static string AddFloats(this IOnnxGraphWriter writer, string nameHint, Tensor tensor, long[] dims) =>
        writer.AddInitializer(nameHint, Floats(tensor), dims);

    /// <summary>Adds a one-dimensional int64 constant (shapes, axes, indices).</summary>
    public static string AddLongs(this IOnnxGraphWriter writer, string nameHint, params long[] values) =>
        writer.AddInitializer(nameHint, values, new long[] { values.Length });

    /// <summary>Adds a float scalar constant (shape []), which broadcasts against any tensor.</summary>
    public static string AddScalar(this IOnnxGraphWriter writer, string nameHint, float value) =>
        writer.AddInitializer(nameHint, new[] { value }, Array.Empty<long>());
}
