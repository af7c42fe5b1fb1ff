using Microsoft.ML.Data;

namespace MLExtensions.Explainability;

/// <summary>
/// Converts between an <see cref="MLImage"/> and the 3×H×W channel-major RGB planes (0–255) that KernelSHAP's players and
/// the <c>Attributions</c> of an image column are laid out in. The alpha channel is not a player: synthetic images keep
/// the explained image's alpha.
/// </summary>
internal static class ImagePixels
{
    /// <summary>Colour channels of an explained image (R, G, B).</summary>
    public const int Channels = 3;

    /// <summary>The image's R, G and B planes.</summary>
    public static float[] ToPlanes(MLImage image)
    {
        var pixels = image.Pixels;
        var (r, g, b) = Offsets(image.PixelFormat);
        int plane = image.Height * image.Width;
        var planes = new float[Channels * plane];
        for (int p = 0; p < plane; p++)
        {
            int o = p * 4;
            planes[p] = pixels[o + r];
            planes[plane + p] = pixels[o + g];
            planes[2 * plane + p] = pixels[o + b];
        }
        return planes;
    }

    /// <summary>The image's alpha channel, one byte per pixel.</summary>
    public static byte[] Alpha(MLImage image)
    {
        var pixels = image.Pixels;
        var alpha = new byte[image.Height * image.Width];
        for (int p = 0; p < alpha.Length; p++)
            alpha[p] = pixels[p * 4 + 3];
        return alpha;
    }

    /// <summary>
    /// An RGBA image of <paramref name="planes"/> (rounded to whole values and clamped to 0–255, since an MLImage holds
    /// bytes) with <paramref name="alpha"/>.
    /// </summary>
    public static MLImage FromPlanes(float[] planes, byte[] alpha, int height, int width)
    {
        int plane = height * width;
        var rgba = new byte[4 * plane];
        for (int p = 0; p < plane; p++)
        {
            int o = p * 4;
            rgba[o] = ToByte(planes[p]);
            rgba[o + 1] = ToByte(planes[plane + p]);
            rgba[o + 2] = ToByte(planes[2 * plane + p]);
            rgba[o + 3] = alpha[p];
        }
        return MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, rgba);
    }

    /// <summary>The nearest byte value (halves away from zero), as the references are stored.</summary>
    public static byte ToByte(double value) => (byte)Math.Clamp(Math.Round(value, MidpointRounding.AwayFromZero), 0, 255);

    /// <summary>Byte offsets of R, G and B in a 4-byte pixel.</summary>
    private static (int R, int G, int B) Offsets(MLPixelFormat format) => format switch
    {
        MLPixelFormat.Bgra32 => (2, 1, 0),
        MLPixelFormat.Rgba32 => (0, 1, 2),
        _ => throw new ArgumentException($"MLImage pixel format {format} is not supported; expected Bgra32 or Rgba32.", nameof(format)),
    };
}
