using System.Buffers.Binary;
using Microsoft.ML;
using MLExtensions.Explainability;
using MLExtensions.Tests.Support;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>The PNG and HTML writers and the global summary.</summary>
public class ExplanationPictureTests
{
    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }, bytes.Take(8));
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void ImageOverlayWaterfallAndSummaryArePngsOfTheExpectedSize()
    {
        using var temp = new TempDirectory();
        var random = new Random(1);
        var image = Enumerable.Range(0, 2 * 8 * 10).Select(_ => (float)random.NextDouble()).ToArray();
        var attributions = image.Select(v => v - 0.5f).ToArray();
        AttributionPlots.SaveImageOverlay(temp.File("overlay.png"), image, attributions, 2, 8, 10, "class 1");
        Assert.Equal((10 * 16 + 160, 8 * 16 + 80), PngSize(temp.File("overlay.png")));

        var names = Enumerable.Range(0, 14).Select(i => $"f{i}").ToArray();
        var values = Enumerable.Range(0, 14).Select(i => (float)(i % 2 == 0 ? i : -i)).ToArray();
        AttributionPlots.SaveWaterfall(temp.File("waterfall.png"), values, names, 0.5f, values);
        // 10 features and one folded bar.
        Assert.Equal((900, 120 + 36 * 11), PngSize(temp.File("waterfall.png")));

        AttributionPlots.SaveSummary(temp.File("summary.png"), names.Zip(values).ToDictionary(p => p.First, p => (double)Math.Abs(p.Second)), maxFeatures: 5);
        Assert.Equal((800, 120 + 30 * 5), PngSize(temp.File("summary.png")));

        var bad = Assert.Throws<ArgumentException>(() => AttributionPlots.SaveImageOverlay(temp.File("x.png"), image, attributions.Take(5).ToArray(), 2, 8, 10));
        Assert.StartsWith("The image and the attributions must have C×H×W = 160 values; found 160 and 5.", bad.Message);
        Assert.False(File.Exists(temp.File("x.png")));
    }

    [Fact]
    public void TokenHtmlIsSelfContainedWithColouredTokensAndValuesOnHover()
    {
        var tokens = new[] { "[CLS]", "un", "##tasty", "<tea>", "[SEP]" };
        var values = new[] { 0f, -1f, -0.5f, 2f, 0f };
        string html = TokenAttributions.ToHtml(new[] { ((IReadOnlyList<string>)tokens, (IReadOnlyList<float>)values, (string?)"negative 0.9") });
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("http", html);
        // Word pieces join the previous token; markup in tokens is escaped; the scale is the 99.9th percentile of |value| (≈ 2).
        Assert.Contains("<span class=\"t\" title=\"-1\" style=\"background:rgba(30,136,229,0.5", html);
        Assert.Contains(">un</span><span class=\"t\" title=\"-0.5\"", html);
        Assert.Contains(">tasty</span>", html);
        Assert.Contains("title=\"2\" style=\"background:rgba(255,13,87,1)\">&lt;tea&gt;</span>", html);
        Assert.Contains("negative 0.9", html);
    }

    [Fact]
    public void MeanAbsoluteIsKeyedBySlotName()
    {
        var ml = new MLContext(seed: 1);
        var rows = RandomRows(20, 3, 3);
        var model = Function(ml, 3, x => 3 * x[0] - x[1]);
        var explained = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap }).Fit(Rows(ml, rows, 3)).Transform(Rows(ml, rows, 3));
        var summary = ExplanationSummary.MeanAbsolute(explained);
        var mean = Enumerable.Range(0, 3).Select(j => rows.Average(r => (double)r[j])).ToArray();
        Assert.Equal(new[] { "Slot 0", "Slot 1", "Slot 2" }, summary.Keys.OrderBy(k => k));
        Assert.Equal(rows.Average(r => Math.Abs(3 * (r[0] - mean[0]))), summary["Slot 0"], 3);
        Assert.Equal(rows.Average(r => Math.Abs(r[1] - mean[1])), summary["Slot 1"], 3);
        Assert.Equal(0, summary["Slot 2"], 5);
    }
}
