using MLExtensions.Vision;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// The image classifier's preprocessing, in the same order as <see cref="ImagePreprocessor.forward"/>: reshape the
/// flat pixel vector to [N, C, H, W], scale, grey → RGB, channel reorder, bilinear resize, mean/std normalization.
/// </summary>
internal static class ImagePreprocessorExporter
{
    public static string Export(IOnnxGraphWriter writer, ImagePreprocessor preprocess, string input, string name)
    {
        var buffers = preprocess.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        string x = writer.AddNode("Reshape", new[] { input, writer.AddLongs(name + ".image_shape", -1, preprocess.Channels, preprocess.Height, preprocess.Width) }, name + ".images");
        x = writer.AddNode("Mul", new[] { x, writer.AddInitializer(name + ".scale", TensorValues.Floats(buffers["scale"]), Array.Empty<long>()) }, name + ".scaled");
        int channels = preprocess.OutputChannels;
        if (channels != preprocess.Channels)
            x = writer.AddNode("Expand", new[] { x, writer.AddLongs(name + ".rgb_shape", 1, channels, 1, 1) }, name + ".rgb");
        long[] order = TensorValues.Longs(buffers["channel_order"]);
        if (!order.SequenceEqual(Enumerable.Range(0, channels).Select(i => (long)i)))
            x = writer.AddNode("Gather", new[] { x, writer.AddLongs(name + ".channel_order", order) }, name + ".reordered", NodeAttribute.Of("axis", 1L));
        if (preprocess.Resizes)
            x = Resize(writer, x, preprocess.OutputSize, name + ".resized");
        var perChannel = new long[] { 1, channels, 1, 1 };
        x = writer.AddNode("Sub", new[] { x, writer.AddFloats(name + ".mean", buffers["mean"], perChannel) }, name + ".centred");
        return writer.AddNode("Mul", new[] { x, writer.AddFloats(name + ".inv_std", buffers["inv_std"], perChannel) }, name);
    }

    /// <summary>
    /// Bilinear resize to size × size like <c>interpolate(bilinear, align_corners: false)</c>. The target is given as
    /// sizes (batch and channels copied from the input's shape) rather than scales, so no rounding of a float
    /// scale factor can change the coordinate mapping.
    /// </summary>
    private static string Resize(IOnnxGraphWriter writer, string x, int size, string name)
    {
        if (writer.OpsetVersion < 11)
            throw new NotSupportedException($"The image classifier resizes its input, which needs ONNX opset 11 or later (Resize with sizes); the target opset is {writer.OpsetVersion}.");
        string shape = writer.AddNode("Shape", new[] { x }, name + ".input_shape");
        string batchAndChannels = writer.AddNode("Slice", new[] { shape, writer.AddLongs(name + ".start", 0), writer.AddLongs(name + ".end", 2) }, name + ".n_c");
        string sizes = writer.AddNode("Concat", new[] { batchAndChannels, writer.AddLongs(name + ".hw", size, size) }, name + ".sizes", NodeAttribute.Of("axis", 0L));
        // Opsets before 13 require the scales input even when sizes is given: an empty tensor then.
        string scales = writer.OpsetVersion >= 13 ? "" : writer.AddInitializer(name + ".no_scales", Array.Empty<float>(), new long[] { 0 });
        string roi = writer.OpsetVersion >= 13 ? "" : writer.AddInitializer(name + ".no_roi", Array.Empty<float>(), new long[] { 0 });
        return writer.AddNode("Resize", new[] { x, roi, scales, sizes }, name,
            NodeAttribute.Of("mode", "linear"),
            NodeAttribute.Of("coordinate_transformation_mode", "pytorch_half_pixel"));
    }
}
