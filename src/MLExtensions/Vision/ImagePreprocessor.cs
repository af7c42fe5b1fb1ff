using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// The first, fixed part of every image classifier: flat raw pixels → [N, C, H, W] scaled to [0, 1] →
/// gray replicated to 3 channels when the network needs them → channel order (RGB, or BGR for weights trained on BGR) → bilinear resize to the network's input size
/// → per-channel normalization. Its statistics are buffers, saved with the weights and never trained, so a
/// saved model carries its own preprocessing.
/// </summary>
public sealed class ImagePreprocessor : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly Tensor scale;
    private readonly Tensor mean;
    private readonly Tensor inv_std;
    private readonly Tensor channel_order;
#pragma warning restore IDE1006

    /// <summary>Creates the layer.</summary>
    /// <param name="channels">Channels of the incoming images (1 or 3).</param>
    /// <param name="height">Height of the incoming images.</param>
    /// <param name="width">Width of the incoming images.</param>
    /// <param name="outputChannels">Channels the network takes (3 replicates gray input).</param>
    /// <param name="outputSize">Side of the square network input; equal to the image size means no resize.</param>
    public ImagePreprocessor(int channels, int height, int width, int outputChannels, int outputSize) : base(nameof(ImagePreprocessor))
    {
        if (outputChannels != channels && !(channels == 1 && outputChannels == 3))
            throw new ArgumentOutOfRangeException(nameof(outputChannels), $"Images with {channels} channels cannot feed a network that takes {outputChannels}.");
        Channels = channels;
        Height = height;
        Width = width;
        OutputChannels = outputChannels;
        OutputSize = outputSize;
        scale = torch.ones(1);
        mean = torch.zeros(outputChannels);
        inv_std = torch.ones(outputChannels);
        register_buffer(nameof(scale), scale);
        register_buffer(nameof(mean), mean);
        channel_order = torch.arange(outputChannels, ScalarType.Int64);
        register_buffer(nameof(inv_std), inv_std);
        register_buffer(nameof(channel_order), channel_order);
    }

    /// <summary>Channels of the incoming images.</summary>
    public int Channels { get; }

    /// <summary>Height of the incoming images.</summary>
    public int Height { get; }

    /// <summary>Width of the incoming images.</summary>
    public int Width { get; }

    /// <summary>Channels passed to the network.</summary>
    public int OutputChannels { get; }

    /// <summary>Side of the (square) network input.</summary>
    public int OutputSize { get; }

    /// <summary>Whether images are resized.</summary>
    public bool Resizes => OutputSize != Height || OutputSize != Width;

    /// <summary>Sets the pixel scale and the per-channel statistics (of scaled pixels, in the network's channel order).</summary>
    public void SetStatistics(float pixelScale, ReadOnlySpan<float> means, ReadOnlySpan<float> stds)
    {
        using var noGrad = torch.no_grad();
        scale.fill_(pixelScale);
        using var m = torch.tensor(means.ToArray());
        using var s = torch.tensor(stds.ToArray().Select(v => v > 1e-12f ? 1f / v : 1f).ToArray());
        mean.copy_(m);
        inv_std.copy_(s);
    }

    /// <summary>
    /// Reverses the channel order (RGB → BGR) before normalization, for weights trained on BGR images (e.g. the CNTK
    /// ResNet-18 in ML.NET's featurizer package). Stored as a buffer, so it is saved with the model.
    /// </summary>
    public void ReverseChannels()
    {
        using var noGrad = torch.no_grad();
        using var reversed = torch.arange(OutputChannels - 1, -1, -1, ScalarType.Int64);
        channel_order.copy_(reversed);
    }

    /// <summary>The pixel scale.</summary>
    public float PixelScale => scale.item<float>();

    /// <summary>Scaling and channel handling only (no resize, no normalization): raw input → [N, C', H, W] in [0, 1].</summary>
    public Tensor ToUnitRange(Tensor input)
    {
        var x = input.reshape(-1, Channels, Height, Width) * scale;
        return OutputChannels != Channels ? x.expand(-1, OutputChannels, -1, -1) : x;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = ToUnitRange(input).index_select(1, channel_order);
        if (Resizes)
            x = nn.functional.interpolate(x, new long[] { OutputSize, OutputSize }, null, InterpolationMode.Bilinear, align_corners: false);
        x = (x - mean.view(1, -1, 1, 1)) * inv_std.view(1, -1, 1, 1);
        return x.MoveToOuterDisposeScope();
    }
}
