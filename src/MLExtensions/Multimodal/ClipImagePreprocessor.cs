using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// CLIP's image preprocessing as a module, so a saved model carries it: raw RGB pixels 0–255 (C×H×W, as ML.NET's
/// <c>ExtractPixels</c> writes them) → shortest side resized to the model's resolution with antialiased bicubic
/// interpolation (as PIL's bicubic resize in OpenAI's <c>preprocess</c>) → centre crop → /255 → CLIP's per-channel mean and std.
/// </summary>
internal sealed class ClipImagePreprocessor : nn.Module<Tensor, Tensor>
{
    /// <summary>CLIP's channel means (of pixels in [0, 1], RGB).</summary>
    public static readonly float[] Mean = { 0.48145466f, 0.4578275f, 0.40821073f };

    /// <summary>CLIP's channel standard deviations.</summary>
    public static readonly float[] Std = { 0.26862954f, 0.26130258f, 0.27577711f };

#pragma warning disable IDE1006 // buffer names are state-dict keys
    private readonly Tensor mean;
    private readonly Tensor inv_std;
#pragma warning restore IDE1006
    private readonly Scalar _toUnit = 1.0 / 255.0;

    public ClipImagePreprocessor(int height, int width, int resolution) : base(nameof(ClipImagePreprocessor))
    {
        Height = height;
        Width = width;
        Resolution = resolution;
        // torchvision's Resize(int): the short side becomes the resolution, the long side int(resolution · long / short).
        (ResizedHeight, ResizedWidth) = height <= width
            ? (resolution, (int)((long)resolution * width / height))
            : ((int)((long)resolution * height / width), resolution);
        CropTop = (int)Math.Round((ResizedHeight - resolution) / 2.0, MidpointRounding.ToEven);
        CropLeft = (int)Math.Round((ResizedWidth - resolution) / 2.0, MidpointRounding.ToEven);
        mean = torch.tensor(Mean).view(1, 3, 1, 1);
        inv_std = torch.tensor(Std.Select(s => 1f / s).ToArray()).view(1, 3, 1, 1);
        register_buffer(nameof(mean), mean);
        register_buffer(nameof(inv_std), inv_std);
    }

    /// <summary>Height of the incoming images.</summary>
    public int Height { get; }

    /// <summary>Width of the incoming images.</summary>
    public int Width { get; }

    /// <summary>Side of the model's square input.</summary>
    public int Resolution { get; }

    /// <summary>Height after the resize, before the crop.</summary>
    public int ResizedHeight { get; }

    /// <summary>Width after the resize, before the crop.</summary>
    public int ResizedWidth { get; }

    /// <summary>First row kept by the centre crop.</summary>
    public int CropTop { get; }

    /// <summary>First column kept by the centre crop.</summary>
    public int CropLeft { get; }

    /// <summary>Raw pixels [N, 3·H·W] or [N, 3, H, W] → normalized [N, 3, R, R].</summary>
    public override Tensor forward(Tensor raw)
    {
        using var scope = torch.NewDisposeScope();
        var x = raw.reshape(-1, 3, Height, Width).mul(_toUnit);
        if (ResizedHeight != Height || ResizedWidth != Width)
        {
            x = nn.functional.interpolate(x, new long[] { ResizedHeight, ResizedWidth }, null, InterpolationMode.Bicubic, align_corners: false, antialias: true);
            // PIL works on 8-bit images: bicubic overshoot is clamped to the valid range.
            x = x.clamp(0.0, 1.0);
        }
        if (ResizedHeight != Resolution || ResizedWidth != Resolution)
            x = x.narrow(2, CropTop, Resolution).narrow(3, CropLeft, Resolution);
        return x.sub(mean).mul(inv_std).MoveToOuterDisposeScope();
    }
}
