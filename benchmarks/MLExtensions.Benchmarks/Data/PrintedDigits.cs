using SkiaSharp;

namespace MLExtensions.Benchmarks.Data;

/// <summary>
/// A second small image data set, generated: the digits 0–9 printed in the machine's TrueType fonts, 28 × 28 grey, with random
/// size, position, rotation, shear, stroke weight, blur, background, noise, a stray line and an occluding block. It exists because
/// no second real image data set is available offline here; the distortions are strong enough that a small CNN does not reach
/// 100 %, so two training recipes can be told apart. Deterministic for a given seed and font list.
/// </summary>
internal static class PrintedDigits
{
    /// <summary>The TrueType fonts used: every .ttf under /usr/share/fonts (DejaVu on Debian), else Skia's default typeface.</summary>
    public static IReadOnlyList<SKTypeface> Typefaces { get; } = LoadTypefaces();

    /// <summary>Generates <paramref name="count"/> images with balanced labels, in random order.</summary>
    public static LabeledImages Generate(int count, int seed)
    {
        var random = new Random(seed);
        var images = new float[count][];
        var labels = new byte[count];
        using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bitmap);
        for (int i = 0; i < count; i++)
        {
            byte digit = (byte)(i % 10);
            labels[i] = digit;
            images[i] = Render(canvas, bitmap, digit, random);
        }
        // Shuffle images and labels together so that the first N images of a set are balanced only on average, as in real data.
        int[] order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        return new LabeledImages(order.Select(j => images[j]).ToArray(), order.Select(j => labels[j]).ToArray());
    }

    private static float[] Render(SKCanvas canvas, SKBitmap bitmap, byte digit, Random random)
    {
        float background = (float)(random.NextDouble() * 0.3);
        float ink = (float)(0.6 + random.NextDouble() * 0.4);
        canvas.Clear(Grey(background));
        canvas.Save();
        canvas.Translate(14 + Uniform(random, -3, 3), 14 + Uniform(random, -3, 3));
        canvas.RotateDegrees(Uniform(random, -25, 25));
        canvas.Skew(Uniform(random, -0.3f, 0.3f), 0);
        using var font = new SKFont(Typefaces[random.Next(Typefaces.Count)], Uniform(random, 14, 24));
        using var paint = new SKPaint
        {
            Color = Grey(ink),
            IsAntialias = true,
            // A stroke on top of the fill thickens the glyph: from hairline fonts to bold ones.
            Style = SKPaintStyle.StrokeAndFill,
            StrokeWidth = Uniform(random, 0, 2),
            MaskFilter = random.NextDouble() < 0.5 ? SKMaskFilter.CreateBlur(SKBlurStyle.Normal, Uniform(random, 0.3f, 1.2f)) : null,
        };
        string text = digit.ToString();
        float width = font.MeasureText(text, paint);
        font.GetFontMetrics(out var metrics);
        canvas.DrawText(text, -width / 2, -(metrics.Ascent + metrics.Descent) / 2, SKTextAlign.Left, font, paint);
        canvas.Restore();

        using var clutter = new SKPaint { Color = Grey(ink * Uniform(random, 0.3f, 0.8f)), StrokeWidth = Uniform(random, 1, 2), IsAntialias = true };
        canvas.DrawLine(Uniform(random, 0, 28), Uniform(random, 0, 28), Uniform(random, 0, 28), Uniform(random, 0, 28), clutter);
        if (random.NextDouble() < 0.5)
        {
            // An occluding block covers part of the digit, in the background's shade.
            using var block = new SKPaint { Color = Grey(background) };
            float x = Uniform(random, 4, 20), y = Uniform(random, 4, 20);
            canvas.DrawRect(x, y, Uniform(random, 3, 8), Uniform(random, 3, 8), block);
        }
        canvas.Flush();

        var pixels = new float[28 * 28];
        var bytes = bitmap.GetPixelSpan();
        for (int p = 0; p < pixels.Length; p++)
            pixels[p] = Math.Clamp(bytes[p] / 255f + (float)(Gaussian(random) * 0.15), 0, 1);
        return pixels;
    }

    private static SKColor Grey(float level)
    {
        byte value = (byte)Math.Clamp(level * 255, 0, 255);
        return new SKColor(value, value, value);
    }

    private static float Uniform(Random random, float low, float high) => low + (float)random.NextDouble() * (high - low);

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static IReadOnlyList<SKTypeface> LoadTypefaces()
    {
        const string folder = "/usr/share/fonts";
        var faces = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.ttf", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                .Select(path => SKTypeface.FromFile(path)).Where(face => face is not null).ToList()
            : [];
        return faces.Count > 0 ? faces : [SKTypeface.Default];
    }
}
