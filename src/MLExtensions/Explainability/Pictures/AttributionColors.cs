using ScottPlot;

namespace MLExtensions.Explainability;

/// <summary>
/// shap's attribution colours: blue (30, 136, 229) for negative values, red (255, 13, 87) for positive ones, transparent at
/// zero, opacity growing with |value| up to the scale (the 99.9th percentile of |value| in the pictures).
/// </summary>
internal static class AttributionColors
{
    public static readonly (byte R, byte G, byte B) Negative = (30, 136, 229);
    public static readonly (byte R, byte G, byte B) Positive = (255, 13, 87);

    /// <summary>Colour and opacity (0–1) of <paramref name="value"/> on a scale of ±<paramref name="scale"/>.</summary>
    public static ((byte R, byte G, byte B) Color, double Alpha) Of(double value, double scale)
    {
        double alpha = scale > 0 ? Math.Min(1, Math.Abs(value) / scale) : 0;
        return (value < 0 ? Negative : Positive, alpha);
    }

    /// <summary>The 99.9th percentile of |value| (the picture's scale; a few extreme values do not wash out the rest).</summary>
    public static double Scale(IEnumerable<float> values)
    {
        var sorted = values.Select(v => Math.Abs((double)v)).Where(double.IsFinite).OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
            return 0;
        double position = 0.999 * (sorted.Length - 1);
        int low = (int)Math.Floor(position);
        int high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
    }

    /// <summary>A ScottPlot colormap over [0, 1] that maps 0.5 to transparent, 0 to opaque blue and 1 to opaque red.</summary>
    public sealed class Diverging : IColormap
    {
        public string Name => "shap red–transparent–blue";

        public ScottPlot.Color GetColor(double position)
        {
            var (color, alpha) = Of(position * 2 - 1, 1);
            return new ScottPlot.Color(color.R, color.G, color.B, (byte)Math.Round(alpha * 255));
        }
    }
}
