using MLExtensions.Onnx.Export;
using ScottPlot;

namespace MLExtensions.Explainability;

/// <summary>PNG pictures of explanations (ScottPlot), after shap's image, waterfall and bar plots. Files are written atomically.</summary>
public static class AttributionPlots
{
    /// <summary>
    /// <see cref="SaveImageOverlay(string, IReadOnlyList{float}, IReadOnlyList{float}, int, int, int, string?, int)"/> for an
    /// MLImage column explained by KernelSHAP, whose <c>Attributions</c> are 3×H×W (R, G, B planes).
    /// </summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="image">The explained image (the row's MLImage, of the size the explanation was fitted on).</param>
    /// <param name="attributions">The row's <c>Attributions</c> (3 × height × width).</param>
    /// <param name="title">Title above the picture (e.g. the explained class); null for none.</param>
    /// <param name="pixelsPerCell">Size of one image pixel in the PNG. Default 16.</param>
    public static void SaveImageOverlay(string path, Microsoft.ML.Data.MLImage image, IReadOnlyList<float> attributions, string? title = null, int pixelsPerCell = 16)
    {
        ArgumentNullException.ThrowIfNull(image);
        SaveImageOverlay(path, ImagePixels.ToPlanes(image), attributions, ImagePixels.Channels, image.Height, image.Width, title, pixelsPerCell);
    }

    /// <summary>
    /// The image in grey (alpha 0.15) under its channel-summed attributions in a red–transparent–blue map scaled to ± the 99.9th
    /// percentile of |value|, with a colour bar.
    /// </summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="image">The image as the network reads it: C×H×W values, channel-major (e.g. the row's pixel column).</param>
    /// <param name="attributions">The row's <c>Attributions</c> (C×H×W).</param>
    /// <param name="channels">Channels C.</param>
    /// <param name="height">Height H.</param>
    /// <param name="width">Width W.</param>
    /// <param name="title">Title above the picture (e.g. the explained class); null for none.</param>
    /// <param name="pixelsPerCell">Size of one image pixel in the PNG. Default 16.</param>
    public static void SaveImageOverlay(string path, IReadOnlyList<float> image, IReadOnlyList<float> attributions, int channels, int height, int width,
        string? title = null, int pixelsPerCell = 16)
    {
        int size = channels * height * width;
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentOutOfRangeException(nameof(channels), $"The image shape must be positive; found {channels}×{height}×{width}.");
        if (image.Count != size || attributions.Count != size)
            throw new ArgumentException($"The image and the attributions must have C×H×W = {size} values; found {image.Count} and {attributions.Count}.", nameof(attributions));
        var grey = new double[height, width];
        var summed = new double[height, width];
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    int i = (c * height + y) * width + x;
                    grey[y, x] += image[i] / channels;
                    summed[y, x] += attributions[i];
                }
            }
        }
        double scale = AttributionColors.Scale(summed.Cast<double>().Select(v => (float)v));
        var plot = new Plot();
        var background = plot.Add.Heatmap(grey);
        background.Colormap = new ScottPlot.Colormaps.Grayscale();
        background.Opacity = 0.15;
        var map = plot.Add.Heatmap(summed);
        map.Colormap = new AttributionColors.Diverging();
        map.ManualRange = new ScottPlot.Range(-Math.Max(scale, 1e-12), Math.Max(scale, 1e-12));
        plot.Add.ColorBar(map).Label = "attribution";
        plot.Axes.Frameless();
        plot.HideGrid();
        if (title is not null)
            plot.Title(title);
        Save(plot, path, width * pixelsPerCell + 160, height * pixelsPerCell + (title is null ? 40 : 80));
    }

    /// <summary>
    /// A waterfall for one row of a tabular model: from the base value, the largest contributions one by one (red up, blue
    /// down) to the prediction; the other features are folded into one bar.
    /// </summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="attributions">The row's <c>Attributions</c>.</param>
    /// <param name="featureNames">A name per feature (the slot names).</param>
    /// <param name="baseValue">The row's <c>BaseValue</c>.</param>
    /// <param name="featureValues">The row's feature values, shown next to the names; null to omit.</param>
    /// <param name="maxFeatures">Features shown separately. Default 10.</param>
    /// <param name="title">Title; null for none.</param>
    public static void SaveWaterfall(string path, IReadOnlyList<float> attributions, IReadOnlyList<string> featureNames, float baseValue,
        IReadOnlyList<float>? featureValues = null, int maxFeatures = 10, string? title = null)
    {
        if (featureNames.Count != attributions.Count)
            throw new ArgumentException($"featureNames must name every attribution ({attributions.Count}); found {featureNames.Count} names.", nameof(featureNames));
        if (maxFeatures < 1)
            throw new ArgumentOutOfRangeException(nameof(maxFeatures), maxFeatures, $"maxFeatures must be > 0; found {maxFeatures}.");
        var order = Enumerable.Range(0, attributions.Count).OrderByDescending(i => Math.Abs(attributions[i])).ToList();
        var shown = order.Take(maxFeatures).ToList();
        var steps = shown.Select(i => (Label: featureValues is null ? featureNames[i] : $"{featureNames[i]} = {featureValues[i]:G4}", Value: (double)attributions[i])).ToList();
        if (order.Count > maxFeatures)
            steps.Add(($"{order.Count - maxFeatures} other features", order.Skip(maxFeatures).Sum(i => (double)attributions[i])));
        // Bottom to top: the largest contribution at the top, as in shap.
        steps.Reverse();
        double running = baseValue + steps.Sum(s => s.Value);
        double prediction = running;
        var plot = new Plot();
        var bars = new List<Bar>();
        for (int n = steps.Count - 1; n >= 0; n--)
        {
            double end = running, start = running - steps[n].Value;
            var (color, _) = AttributionColors.Of(steps[n].Value, 1);
            bars.Add(new Bar
            {
                Position = n, ValueBase = start, Value = end,
                FillColor = new ScottPlot.Color(color.R, color.G, color.B),
                Label = steps[n].Value.ToString("+0.###;-0.###"),
            });
            running = start;
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.Horizontal = true;
        plot.Axes.Left.SetTicks(Enumerable.Range(0, steps.Count).Select(i => (double)i).ToArray(), steps.Select(s => s.Label).ToArray());
        plot.Add.VerticalLine(baseValue, pattern: LinePattern.Dashed).LegendText = $"base value {baseValue:G4}";
        plot.Add.VerticalLine(prediction, pattern: LinePattern.Solid).LegendText = $"f(x) {prediction:G4}";
        plot.Axes.MarginsX(0.12); // room for the value labels beside the bars
        plot.ShowLegend(Alignment.LowerRight);
        plot.XLabel("model output");
        if (title is not null)
            plot.Title(title);
        Save(plot, path, 900, 120 + 36 * steps.Count);
    }

    /// <summary>Global importance: mean |attribution| per feature over a data set, largest first (shap's bar summary).</summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="meanAbsolute">From <see cref="ExplanationSummary.MeanAbsolute"/>.</param>
    /// <param name="maxFeatures">Features shown. Default 20.</param>
    /// <param name="title">Title; null for none.</param>
    public static void SaveSummary(string path, IReadOnlyDictionary<string, double> meanAbsolute, int maxFeatures = 20, string? title = null)
    {
        if (meanAbsolute.Count == 0)
            throw new ArgumentException("meanAbsolute has no features.", nameof(meanAbsolute));
        var top = meanAbsolute.OrderByDescending(p => p.Value).Take(maxFeatures).Reverse().ToList();
        var plot = new Plot();
        var bars = top.Select((p, i) => new Bar
        {
            Position = i, Value = p.Value,
            FillColor = new ScottPlot.Color(AttributionColors.Positive.R, AttributionColors.Positive.G, AttributionColors.Positive.B),
        }).ToList();
        plot.Add.Bars(bars).Horizontal = true;
        plot.Axes.Left.SetTicks(Enumerable.Range(0, top.Count).Select(i => (double)i).ToArray(), top.Select(p => p.Key).ToArray());
        plot.XLabel("mean |attribution|");
        if (title is not null)
            plot.Title(title);
        Save(plot, path, 800, 120 + 30 * top.Count);
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }
}
