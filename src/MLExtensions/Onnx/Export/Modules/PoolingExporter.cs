using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>Max, average and adaptive average pooling.</summary>
internal static class PoolingExporter
{
    public static string Max(IOnnxGraphWriter writer, MaxPool2d pool, string input, string name)
    {
        var pad = pool.padding ?? new long[] { 0, 0 };
        var attributes = new List<NodeAttribute>
        {
            NodeAttribute.IntList("kernel_shape", pool.kernel_size),
            // PyTorch's default stride is the kernel size; ONNX's is 1.
            NodeAttribute.IntList("strides", pool.stride ?? pool.kernel_size),
            NodeAttribute.IntList("pads", pad[0], pad[1], pad[0], pad[1]),
            NodeAttribute.Of("ceil_mode", pool.ceil_mode ? 1L : 0L),
        };
        if (pool.dilation is { } dilation && dilation.Any(d => d != 1))
            attributes.Add(NodeAttribute.IntList("dilations", dilation));
        return writer.AddNode("MaxPool", new[] { input }, name, attributes.ToArray());
    }

    public static string Average(IOnnxGraphWriter writer, AvgPool2d pool, string input, string name)
    {
        if (pool.divisor_override is not null)
            throw new NotSupportedException($"ONNX export of AvgPool2d '{name}' with a divisor override is not supported.");
        var pad = pool.padding ?? new long[] { 0, 0 };
        return writer.AddNode("AveragePool", new[] { input }, name,
            NodeAttribute.IntList("kernel_shape", pool.kernel_size),
            NodeAttribute.IntList("strides", pool.stride ?? pool.kernel_size),
            NodeAttribute.IntList("pads", pad[0], pad[1], pad[0], pad[1]),
            NodeAttribute.Of("ceil_mode", pool.ceil_mode ? 1L : 0L),
            NodeAttribute.Of("count_include_pad", pool.count_include_pad ? 1L : 0L));
    }

    /// <summary>True when the adaptive pool reduces every map to a single value (needs no input size).</summary>
    public static bool IsGlobal(AdaptiveAvgPool2d pool) => pool.output_size.All(s => s == 1);

    public static string Global(IOnnxGraphWriter writer, string input, string name) =>
        writer.AddNode("GlobalAveragePool", new[] { input }, name);

    /// <summary>
    /// Adaptive average pooling of a [N, C, <paramref name="height"/>, <paramref name="width"/>] map. ONNX has no
    /// adaptive pool, so: the identity when the size does not change, a plain AveragePool when the input divides
    /// evenly, and otherwise a MatMul with a constant averaging matrix that reproduces PyTorch's uneven bins
    /// (bin i covers [floor(i·in/out), ceil((i+1)·in/out))).
    /// </summary>
    public static string Adaptive(IOnnxGraphWriter writer, AdaptiveAvgPool2d pool, string input, long height, long width, string name)
    {
        long outH = pool.output_size[0], outW = pool.output_size.Length > 1 ? pool.output_size[1] : pool.output_size[0];
        if (outH == height && outW == width)
            return input;
        if (outH == 1 && outW == 1)
            return Global(writer, input, name);
        if (height % outH == 0 && width % outW == 0)
        {
            long kh = height / outH, kw = width / outW;
            return writer.AddNode("AveragePool", new[] { input }, name,
                NodeAttribute.IntList("kernel_shape", kh, kw), NodeAttribute.IntList("strides", kh, kw));
        }
        var matrix = new float[height * width * outH * outW];
        for (long oy = 0; oy < outH; oy++)
        {
            long y0 = oy * height / outH, y1 = ((oy + 1) * height + outH - 1) / outH;
            for (long ox = 0; ox < outW; ox++)
            {
                long x0 = ox * width / outW, x1 = ((ox + 1) * width + outW - 1) / outW;
                float weight = 1f / ((y1 - y0) * (x1 - x0));
                for (long y = y0; y < y1; y++)
                {
                    for (long x = x0; x < x1; x++)
                        matrix[(y * width + x) * outH * outW + oy * outW + ox] = weight;
                }
            }
        }
        string flat = writer.AddNode("Reshape", new[] { input, writer.AddLongs(name + ".flat_shape", 0, 0, height * width) }, name + ".flat");
        string pooled = writer.AddNode("MatMul", new[] { flat, writer.AddInitializer(name + ".bins", matrix, new[] { height * width, outH * outW }) }, name + ".pooled");
        return writer.AddNode("Reshape", new[] { pooled, writer.AddLongs(name + ".shape", 0, 0, outH, outW) }, name);
    }
}
