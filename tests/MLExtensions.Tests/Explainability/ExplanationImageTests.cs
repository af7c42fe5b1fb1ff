using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Explainability;
using MLExtensions.Tests.Support;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>KernelSHAP on an MLImage column: players are patches, absent patches take the background's mean image.</summary>
public class ExplanationImageTests
{
    private const int Size = 8;

    public sealed class ImageRow
    {
        [ImageType(Size, Size)]
        public MLImage Image { get; set; } = null!;

        public float Label { get; set; }
    }

    public sealed class PathRow
    {
        public string Path { get; set; } = "";
    }

    /// <summary>Images saved as PNG files and loaded by LoadImages, whose column type declares no size.</summary>
    private static IDataView FromFiles(MLContext ml, TempDirectory folder, params MLImage[] images)
    {
        var paths = images.Select((image, i) =>
        {
            string path = folder.File($"image{i}.png");
            image.Save(path);
            return new PathRow { Path = path };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(paths);
        return ml.Transforms.LoadImages("Image", null, "Path").Fit(data).Transform(data);
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
    }

    /// <summary>An RGBA image of 3×H×W RGB planes (alpha 255), built here independently of the library.</summary>
    private static MLImage Image(byte[] planes, int height, int width)
    {
        int plane = height * width;
        var rgba = new byte[4 * plane];
        for (int p = 0; p < plane; p++)
        {
            rgba[4 * p] = planes[p];
            rgba[4 * p + 1] = planes[plane + p];
            rgba[4 * p + 2] = planes[2 * plane + p];
            rgba[4 * p + 3] = 255;
        }
        return MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, rgba);
    }

    private static byte[] RandomPlanes(Random random, int height, int width, int max = 256) =>
        Enumerable.Range(0, 3 * height * width).Select(_ => (byte)random.Next(max)).ToArray();

    /// <summary>Training images whose label depends on the red of the top-left quarter and the blue of the bottom-right one, nonlinearly.</summary>
    private static List<ImageRow> Training(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var planes = RandomPlanes(random, Size, Size);
            // Red of the top-left quarter, blue of the bottom-right one: the channels matter, not only the brightness.
            double topLeft = 0, bottomRight = 0;
            for (int y = 0; y < Size / 2; y++)
            {
                for (int x = 0; x < Size / 2; x++)
                {
                    topLeft += planes[y * Size + x];
                    bottomRight += planes[(2 * Size + y + Size / 2) * Size + x + Size / 2];
                }
            }
            float label = (float)(topLeft / 2000 * (bottomRight > 2000 ? 2 : -1));
            return new ImageRow { Image = Image(planes, Size, Size), Label = label };
        }).ToList();
    }

    /// <summary>Two background images whose pixel-wise mean is whole (the same parity in every value), so no rounding.</summary>
    private static (List<ImageRow> Rows, double[] Mean) Background(int seed)
    {
        var random = new Random(seed);
        var first = RandomPlanes(random, Size, Size, 156);
        var second = first.Select(v => (byte)(v + 2 * random.Next(50))).ToArray();
        var mean = first.Zip(second, (a, b) => (a + b) / 2.0).ToArray();
        return (new List<ImageRow> { new() { Image = Image(first, Size, Size) }, new() { Image = Image(second, Size, Size) } }, mean);
    }

    /// <summary>The value indices (c, y, x) → (c·H + y)·W + x of the patches of a <paramref name="grid"/>×<paramref name="grid"/> grid.</summary>
    private static List<int[]> Patches(int grid)
    {
        int side = Size / grid;
        var patches = new List<int[]>();
        for (int py = 0; py < grid; py++)
        {
            for (int px = 0; px < grid; px++)
            {
                patches.Add((from c in Enumerable.Range(0, 3)
                             from y in Enumerable.Range(py * side, side)
                             from x in Enumerable.Range(px * side, side)
                             select (c * Size + y) * Size + x).ToArray());
            }
        }
        return patches;
    }

    [Fact]
    public void KernelShapOnAnImageColumnOfALinearPipelineGivesEachPatchItsExactShare()
    {
        // ExtractPixels (R, G, B planes, scaled by 1/255) → SDCA regression: f = b + Σ w·pixels/255, so a patch's Shapley
        // value is exactly Σ over its values of w·(x − mean)/255, whichever coalitions are sampled (16 patches of the default 4×4 grid).
        var ml = new MLContext(seed: 1);
        var training = ml.Data.LoadFromEnumerable(Training(60, 1));
        var model = ml.Transforms.ExtractPixels("Features", "Image", scaleImage: 1f / 255)
            .Append(ml.Regression.Trainers.Sdca(maximumNumberOfIterations: 5))
            .Fit(training);
        var weights = model.LastTransformer.Model.Weights.ToArray();
        Assert.Equal(3 * Size * Size, weights.Length);
        var (background, mean) = Background(2);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Image" })
            .Fit(ml.Data.LoadFromEnumerable(background));
        var planes = RandomPlanes(new Random(3), Size, Size);
        var input = ml.Data.LoadFromEnumerable(new[] { new ImageRow { Image = Image(planes, Size, Size) } });
        var explained = explainer.Transform(input);
        Assert.Equal(3 * Size * Size, ((VectorDataViewType)explained.Schema[ExplanationTransformer.AttributionsColumn].Type).Size);
        var row = Read(explained).Single();

        foreach (var patch in Patches(4))
        {
            double expected = patch.Sum(i => weights[i] * (planes[i] - mean[i]) / 255);
            Assert.Equal(expected, patch.Sum(i => (double)row.Attributions[i]), 3);
            // Spread evenly: every value of the patch holds the same share.
            Assert.All(patch, i => Assert.Equal(row.Attributions[patch[0]], row.Attributions[i], 5));
        }
        Assert.True(Patches(4).Max(p => Math.Abs(p.Sum(i => (double)row.Attributions[i]))) > 0.05, "the patches must matter");
        var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(model);
        var meanImage = Image(mean.Select(v => (byte)v).ToArray(), Size, Size);
        Assert.Equal(engine.Predict(new ImageRow { Image = meanImage }).Score, row.BaseValue, 3);
        float output = engine.Predict(new ImageRow { Image = Image(planes, Size, Size) }).Score;
        Assert.Equal(output - row.BaseValue, row.Attributions.Sum(), 2);
        Assert.True(Math.Abs(row.Delta) < 1e-3, $"delta {row.Delta}");

        // Saved and loaded with the pipeline; the overlay takes the MLImage and its 3×H×W attributions.
        using var temp = new TempDirectory();
        string path = temp.File("image-explainer.zip");
        ml.Model.Save(explainer, input.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        Assert.Equal(row.Attributions, Read(loaded.Transform(input)).Single().Attributions);
        string png = temp.File("overlay.png");
        AttributionPlots.SaveImageOverlay(png, Image(planes, Size, Size), row.Attributions, "linear", pixelsPerCell: 8);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(png).Take(4));
    }

    [Fact]
    public void KernelShapOnAnImageColumnOfALightGbmPipelineMatchesBruteForceShapleyValuesOverPatches()
    {
        // 2×2 grid of patches (FeatureGroups over the 3×H×W values): 4 players, exact enumeration. Oracle: every
        // coalition's image composed here (patch from x, else the background mean) and scored by the pipeline itself.
        var ml = new MLContext(seed: 1);
        var training = ml.Data.LoadFromEnumerable(Training(300, 4));
        var model = ml.Transforms.ResizeImages("Resized", Size / 2, Size / 2, "Image")
            .Append(ml.Transforms.ExtractPixels("Features", "Resized"))
            .Append(ml.Regression.Trainers.LightGbm(new Microsoft.ML.Trainers.LightGbm.LightGbmRegressionTrainer.Options { NumberOfIterations = 30, MinimumExampleCountPerLeaf = 5 }))
            .Fit(training);
        var (background, mean) = Background(5);
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Image", FeatureGroups = ImagePatches.Groups(3, Size, Size, 2, 2) };
        var explainer = ml.Transforms.ExplainPredictions(model, options).Fit(ml.Data.LoadFromEnumerable(background));
        var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(model);
        var patches = Patches(2);
        var random = new Random(6);
        for (int n = 0; n < 2; n++)
        {
            var planes = RandomPlanes(random, Size, Size);
            var row = Read(explainer.Transform(ml.Data.LoadFromEnumerable(new[] { new ImageRow { Image = Image(planes, Size, Size) } }))).Single();
            double V(int coalition)
            {
                var composed = mean.Select(v => (byte)v).ToArray();
                for (int p = 0; p < patches.Count; p++)
                {
                    if ((coalition >> p & 1) == 1)
                    {
                        foreach (int i in patches[p])
                            composed[i] = planes[i];
                    }
                }
                return engine.Predict(new ImageRow { Image = Image(composed, Size, Size) }).Score;
            }
            var expected = ShapleyValues(patches.Count, V);
            Assert.Equal(expected, patches.Select(p => p.Sum(i => (double)row.Attributions[i])), new Tolerance(1e-3));
            Assert.Equal(V(0), row.BaseValue, 3);
            Assert.True(Math.Abs(row.Delta) < 1e-3, $"delta {row.Delta}");
            Assert.True(expected.Any(v => Math.Abs(v) > 1e-2), "the model must depend on the image");
        }
    }

    [Fact]
    public void KernelShapOnTheImageClassifiersMLImageColumnMatchesBruteForceShapleyValuesOfTheExplainedClass()
    {
        // This library's ImageClassifier reading an MLImage column: the explained column defaults to the network's image
        // column; f = the probability of the predicted class. One background image (so the mean is that image), 2×2 patches.
        var ml = new MLContext(seed: 4);
        int side = MLExtensions.Tests.Vision.SyntheticImages.Size;
        var rows = MLExtensions.Tests.Vision.SyntheticImages.MakeBytes(60, 5)
            .Select(r => new MLExtensions.Tests.Vision.ImageClassifierTests.ImageRow { Image = MLExtensions.Tests.Vision.ImageClassifierTests.ToImage(r.Pixels), Label = r.Label }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ImageClassifier(new MLExtensions.Vision.ImageClassifierOptions { Epochs = 2, Seed = 4, BatchSize = 32 }))
            .Fit(data);
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, FeatureGroups = ImagePatches.Groups(3, side, side, 2, 2) };
        var explainer = ml.Transforms.ExplainPredictions(model, options).Fit(ml.Data.LoadFromEnumerable(rows.Skip(10).Take(1)));
        var explained = explainer.Transform(ml.Data.LoadFromEnumerable(rows.Take(2)));
        var classes = explained.GetColumn<uint>(ExplanationTransformer.ExplainedClassColumn).ToList();
        var result = Read(explained);
        // The estimator's output schema is the transformer's (Attributions 3×H×W without slot names, a key ExplainedClass).
        var input = ml.Data.LoadFromEnumerable(rows.Take(2));
        ExplanationSchemaTests.AssertSameShape(ml.Transforms.ExplainPredictions(model, options).GetOutputSchema(ExplanationSchemaTests.ShapeOf(input.Schema)), explainer.Transform(input).Schema);
        Assert.Equal(3 * side * side, ((VectorDataViewType)explained.Schema[ExplanationTransformer.AttributionsColumn].Type).Size);

        var engine = ml.Model.CreatePredictionEngine<MLExtensions.Tests.Vision.ImageClassifierTests.ImageRow, MLExtensions.Tests.Vision.ImageClassifierTests.ScorePrediction>(model);
        var reference = GreyPlanes(rows[10].Image);
        var groups = ImagePatches.Groups(1, side, side, 2, 2);
        for (int n = 0; n < 2; n++)
        {
            var x = GreyPlanes(rows[n].Image);
            var scores = engine.Predict(rows[n]).Score;
            int target = Array.IndexOf(scores, scores.Max());
            Assert.Equal((uint)target + 1, classes[n]);
            double V(int coalition)
            {
                var composed = (byte[])reference.Clone();
                for (int p = 0; p < groups.Length; p++)
                {
                    if ((coalition >> p & 1) == 1)
                    {
                        foreach (int i in groups[p])
                            composed[i] = x[i];
                    }
                }
                return engine.Predict(new MLExtensions.Tests.Vision.ImageClassifierTests.ImageRow { Image = MLExtensions.Tests.Vision.ImageClassifierTests.ToImage(composed) }).Score[target];
            }
            var expected = ShapleyValues(groups.Length, V);
            // The attributions of a patch over all three channels add up to its value.
            var patchSums = ImagePatches.Groups(3, side, side, 2, 2).Select(p => p.Sum(i => (double)result[n].Attributions[i]));
            Assert.Equal(expected, patchSums, new Tolerance(1e-3));
            Assert.Equal(V(0), result[n].BaseValue, 3);
            Assert.True(Math.Abs(result[n].Delta) < 1e-3, $"delta {result[n].Delta}");
        }
    }

    /// <summary>The grey level of each pixel of an image whose channels are equal (the synthetic classifier images).</summary>
    private static byte[] GreyPlanes(MLImage image) =>
        Enumerable.Range(0, image.Width * image.Height).Select(p => image.Pixels[4 * p]).ToArray();

    [Fact]
    public void KernelShapOnAnImageColumnRefusesImagesOfAnotherSizeAndAnEmptyBackground()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.ResizeImages("Resized", Size / 2, Size / 2, "Image")
            .Append(ml.Transforms.ExtractPixels("Features", "Resized"))
            .Append(ml.Regression.Trainers.Sdca(maximumNumberOfIterations: 2))
            .Fit(ml.Data.LoadFromEnumerable(Training(20, 7)));
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Image", FeatureGroups = ImagePatches.Groups(3, Size, Size, 2, 2) };
        var random = new Random(8);
        var (background, _) = Background(9);
        var explainer = ml.Transforms.ExplainPredictions(model, options).Fit(ml.Data.LoadFromEnumerable(background));

        // A column declaring another size is refused on its schema; an undeclared size is checked row by row.
        var declared = Assert.Throws<ArgumentOutOfRangeException>(() => explainer.Transform(ml.Data.LoadFromEnumerable(new[] { new WideImageRow { Image = Image(RandomPlanes(random, 10, 12), 10, 12) } })));
        Assert.StartsWith("The explained image column 'Image' holds 12×10 images, but the background images were 8×8;", declared.Message);
        using var folder = new TempDirectory();
        var undeclared = explainer.Transform(FromFiles(ml, folder, Image(RandomPlanes(random, 10, 12), 10, 12)));
        var e = Thrown<InvalidOperationException>(() => Read(undeclared));
        Assert.StartsWith("The image in column 'Image' at row 0 is 12×10, but the background images were 8×8;", e.Message);

        // Background images of two sizes, and no background rows at all.
        var mixed = FromFiles(ml, folder, Image(RandomPlanes(random, 8, 8), 8, 8), Image(RandomPlanes(random, 6, 8), 6, 8));
        var sizes = Assert.Throws<InvalidOperationException>(() => ml.Transforms.ExplainPredictions(model, options).Fit(mixed));
        Assert.StartsWith("The background images in column 'Image' must all have one size: row 1 is 8×6, the first was 8×8.", sizes.Message);
        var empty = Assert.Throws<ArgumentException>(() => ml.Transforms.ExplainPredictions(model, options).Fit(ml.Data.LoadFromEnumerable(new List<ImageRow>())));
        Assert.StartsWith("The background data has no rows", empty.Message);

        // FeatureGroups must cover the 3×H×W values of the images.
        var wrongGroups = new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Image", FeatureGroups = ImagePatches.Groups(1, Size, Size, 2, 2) };
        var groups = Assert.Throws<ArgumentException>(() => ml.Transforms.ExplainPredictions(model, wrongGroups).Fit(ml.Data.LoadFromEnumerable(background)));
        Assert.StartsWith("Every slot must be in exactly one of the FeatureGroups; slot 64 of the explained images' 192 values (3×H×W) is in 0.", groups.Message);
    }

    public sealed class WideImageRow
    {
        [ImageType(10, 12)]
        public MLImage Image { get; set; } = null!;
    }
}
