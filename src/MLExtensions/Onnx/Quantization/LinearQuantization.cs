namespace MLExtensions.Onnx;

/// <summary>A scale and zero point: real = (q − zeroPoint) × scale, as in ONNX's QuantizeLinear/DequantizeLinear.</summary>
/// <param name="Scale">Step between neighbouring codes; always positive.</param>
/// <param name="ZeroPoint">The code that represents 0.0 exactly.</param>
internal readonly record struct QuantizationParameters(float Scale, int ZeroPoint)
{
    /// <summary>
    /// Parameters covering [min, max] with codes [qmin, qmax]. The range is widened to include 0 so that zero (padding,
    /// ReLU output) is exact; symmetric ranges use [−m, m] with m = max(|min|, |max|) and zero point at the centre.
    /// </summary>
    public static QuantizationParameters FromRange(float min, float max, int qmin, int qmax, bool symmetric)
    {
        min = Math.Min(min, 0f);
        max = Math.Max(max, 0f);
        if (symmetric)
        {
            float m = Math.Max(-min, max);
            // Symmetric int8 uses ±127 (not −128) so that the range is the same on both sides of zero.
            int half = (qmax - qmin) / 2;
            float scale = m > 0 ? m / half : 1f;
            // Zero point: 0 for int8, 128 for uint8 (so uint8 codes are int8 codes shifted by 128).
            return new QuantizationParameters(scale, (qmin + qmax + 1) / 2);
        }
        if (max - min <= 0)
            return new QuantizationParameters(1f, Math.Clamp(0, qmin, qmax));
        float s = (max - min) / (qmax - qmin);
        int zp = (int)Math.Clamp(Math.Round(qmin - min / s, MidpointRounding.ToEven), qmin, qmax);
        return new QuantizationParameters(s, zp);
    }

    /// <summary>The code of <paramref name="value"/>: round half to even (as QuantizeLinear does), then saturate.</summary>
    public int Quantize(float value, int qmin, int qmax) =>
        (int)Math.Clamp(Math.Round(value / Scale, MidpointRounding.ToEven) + ZeroPoint, qmin, qmax);
}

/// <summary>Code ranges of the integer types used.</summary>
internal static class QuantizedRange
{
    public const int Int8Min = -128, Int8Max = 127, UInt8Min = 0, UInt8Max = 255;
}

/// <summary>A weight tensor in integers: codes (row-major, same shape as the float weight), and one scale/zero point per channel.</summary>
/// <param name="Codes">The codes, each in the target type's range.</param>
/// <param name="Parameters">One entry per channel along <paramref name="Axis"/>, or a single entry (per tensor).</param>
/// <param name="Axis">The channel axis, or -1 for per-tensor.</param>
internal sealed record QuantizedWeight(int[] Codes, QuantizationParameters[] Parameters, int Axis)
{
    public float[] Scales => Parameters.Select(p => p.Scale).ToArray();

    public byte[] CodesAsInt8() => Codes.Select(c => unchecked((byte)(sbyte)c)).ToArray();

    public byte[] CodesAsUInt8() => Codes.Select(c => (byte)c).ToArray();

    /// <summary>Back to floats: (q − zp) × scale per element.</summary>
    public float[] Dequantize(long[] dims)
    {
        var values = new float[Codes.Length];
        var channelOf = ChannelIndexer(dims, Axis);
        for (int i = 0; i < values.Length; i++)
        {
            var p = Parameters[channelOf(i)];
            values[i] = (Codes[i] - p.ZeroPoint) * p.Scale;
        }
        return values;
    }

    /// <summary>Maps a flat row-major index to its channel along <paramref name="axis"/> (always 0 for per-tensor).</summary>
    public static Func<int, int> ChannelIndexer(long[] dims, int axis)
    {
        if (axis < 0)
            return _ => 0;
        long inner = 1;
        for (int d = axis + 1; d < dims.Length; d++)
            inner *= dims[d];
        long channels = dims[axis];
        return i => (int)(i / inner % channels);
    }
}

/// <summary>Quantizes weight tensors per tensor or per channel.</summary>
internal static class WeightQuantizer
{
    /// <summary>Quantizes <paramref name="values"/> (shape <paramref name="dims"/>) to codes in [qmin, qmax], per channel along <paramref name="axis"/> (or per tensor when -1).</summary>
    public static QuantizedWeight Quantize(float[] values, long[] dims, int axis, bool symmetric, int qmin, int qmax)
    {
        int channels = axis < 0 ? 1 : checked((int)dims[axis]);
        var min = Enumerable.Repeat(float.PositiveInfinity, channels).ToArray();
        var max = Enumerable.Repeat(float.NegativeInfinity, channels).ToArray();
        var channelOf = QuantizedWeight.ChannelIndexer(dims, axis);
        for (int i = 0; i < values.Length; i++)
        {
            int c = channelOf(i);
            min[c] = Math.Min(min[c], values[i]);
            max[c] = Math.Max(max[c], values[i]);
        }
        var parameters = new QuantizationParameters[channels];
        for (int c = 0; c < channels; c++)
            parameters[c] = QuantizationParameters.FromRange(float.IsFinite(min[c]) ? min[c] : 0, float.IsFinite(max[c]) ? max[c] : 0, qmin, qmax, symmetric);
        var codes = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
            codes[i] = parameters[channelOf(i)].Quantize(values[i], qmin, qmax);
        return new QuantizedWeight(codes, parameters, axis);
    }
}
