using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Multimodal;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Multimodal;

public class ZeroShotImageClassifierTests
{
    private const int Side = 32;

    public sealed class ImageRow
    {
        [VectorType(3 * Side * Side)] public float[] Features { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public uint PredictedLabel { get; set; }
    }

    /// <summary>The three reference images as pixel vectors (Single 0–255, C×H×W).</summary>
    internal static List<ImageRow> ReferenceImages(params string[] labels)
    {
        var bytes = ClipFixture.ImagePixels();
        int size = 3 * Side * Side;
        return Enumerable.Range(0, 3).Select(i => new ImageRow
        {
            Features = bytes.Skip(i * size).Take(size).Select(b => (float)b).ToArray(),
            Label = labels.Length > i ? labels[i] : "",
        }).ToList();
    }

    private static ZeroShotImageClassifierOptions Options(IList<string> classes, IList<string>? templates = null) => new()
    {
        Model = ClipFixture.Model,
        ClassNames = classes,
        PromptTemplates = templates ?? new List<string> { "{}" },
        ImageColumnName = "Features",
        ImageHeight = Side,
        ImageWidth = Side,
    };

    // The reference texts, except the empty one (a class needs a name): with the template "{}" each class prompt is the text itself.
    private static readonly int[] ReferenceTexts = { 0, 1, 3, 4 };

    [Fact]
    public void Score_is_the_softmax_of_the_reference_logits()
    {
        var ml = new MLContext(seed: 1);
        var texts = ClipFixture.Texts();
        var classes = ReferenceTexts.Select(i => texts[i]).ToList();
        var data = ml.Data.LoadFromEnumerable(ReferenceImages());
        var model = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(classes)).Fit(data);
        var scores = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).ToList();

        var logits = ClipFixture.Matrix("logits_per_image");
        for (int image = 0; image < 3; image++)
        {
            var expected = Softmax(ReferenceTexts.Select(t => logits[image][t]).ToArray());
            ClipModelTests.AssertClose(new[] { expected }, new[] { scores[image].Score }, 1e-5f);
            Assert.Equal((uint)(Array.IndexOf(expected, expected.Max()) + 1), scores[image].PredictedLabel);
        }
        Assert.Equal(classes, model.ClassNames);
    }

    [Fact]
    public void Prompt_ensembling_averages_normalized_text_embeddings_and_renormalizes()
    {
        var ml = new MLContext(seed: 1);
        var templates = new List<string> { "a photo of a {}.", "a drawing of the {}", "{} in the wild" };
        var classes = new List<string> { "cat", "dog", "car" };
        var model = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(classes, templates))
            .Fit(ml.Data.LoadFromEnumerable(ReferenceImages()));

        var actual = model.ClassEmbeddings;
        for (int c = 0; c < classes.Count; c++)
        {
            var features = ClipFixture.Model.EncodeTexts(templates.Select(t => (string?)t.Replace("{}", classes[c])).ToList());
            var mean = new double[features[0].Length];
            foreach (var f in features)
            {
                double norm = Math.Sqrt(f.Sum(v => (double)v * v));
                for (int j = 0; j < f.Length; j++)
                    mean[j] += f[j] / norm / features.Length;
            }
            double meanNorm = Math.Sqrt(mean.Sum(v => v * v));
            ClipModelTests.AssertClose(new[] { mean.Select(v => (float)(v / meanNorm)).ToArray() }, new[] { actual[c] }, 1e-5f);
        }
        Assert.Equal(18, ZeroShotPromptTemplates.Cifar.Count);
        Assert.All(ZeroShotPromptTemplates.Cifar, t => Assert.Contains("{}", t));
    }

    [Fact]
    public void A_key_label_orders_the_classes_and_evaluate_works()
    {
        var ml = new MLContext(seed: 1);
        // Key values in order of first appearance: dog, cat, car.
        var rows = ReferenceImages("dog", "cat", "car");
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string>())));
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = pipeline.Fit(data);
        var scored = model.Transform(data);
        Assert.Equal(new[] { "dog", "cat", "car" }, model.LastTransformer.ClassNames);

        VBuffer<ReadOnlyMemory<char>> keys = default;
        scored.Schema["PredictedLabel"].GetKeyValues(ref keys);
        Assert.Equal(new[] { "dog", "cat", "car" }, keys.DenseValues().Select(k => k.ToString()));
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.InRange(metrics.MicroAccuracy, 0, 1);

        // The same classes given in another order by name follow the key order, so the scores are the same.
        var byName = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string> { "car", "dog", "cat" }))).Fit(data);
        var a = ml.Data.CreateEnumerable<Prediction>(scored, false).ToList();
        var b = ml.Data.CreateEnumerable<Prediction>(byName.Transform(data), false).ToList();
        ClipModelTests.AssertClose(a.Select(p => p.Score).ToArray(), b.Select(p => p.Score).ToArray(), 0f);

        // And without the label column the names alone define the classes.
        var expected = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string> { "dog", "cat", "car" }))
            .Fit(ml.Data.LoadFromEnumerable(rows.Select(r => new { r.Features }).Select(r => new ImageRow { Features = r.Features })));
        var c = ml.Data.CreateEnumerable<Prediction>(expected.Transform(data), false).ToList();
        ClipModelTests.AssertClose(a.Select(p => p.Score).ToArray(), c.Select(p => p.Score).ToArray(), 0f);
    }

    [Fact]
    public void Save_and_load_in_process_and_in_a_fresh_process_and_prediction_engine()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ReferenceImages());
        var model = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(
            Options(new List<string> { "cat", "dog", "bird" }, ZeroShotPromptTemplates.Cifar.ToList())).Fit(data);
        using var temp = new TempDirectory();
        string path = temp.File("zeroshot.zip");
        ml.Model.Save(model, data.Schema, path);

        var expected = PredictionDump.Lines(model.Transform(data)).ToList();
        var loaded = ml.Model.Load(path, out _);
        Assert.Equal(expected, PredictionDump.Lines(loaded.Transform(data)));

        var fresh = FreshProcess.Predict(path, ReferenceImages().Select(r => r.Features), temp.Path);
        Assert.Equal(expected, fresh.Skip(1));

        var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
        var first = engine.Predict(ReferenceImages()[0]);
        var all = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), false).First();
        Assert.Equal(all.Score, first.Score);
        Assert.Equal(all.PredictedLabel, first.PredictedLabel);
    }

    [Fact]
    public void Bad_options_and_inputs_are_named()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ReferenceImages());
        var empty = Assert.Throws<ArgumentException>(() =>
            ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string>())).Fit(data));
        Assert.Contains("ClassNames", empty.Message);

        var duplicate = Assert.Throws<ArgumentException>(() =>
            ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string> { "cat", "dog", "Cat" })));
        Assert.Contains("'cat'", duplicate.Message);

        var template = Assert.Throws<ArgumentException>(() =>
            ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string> { "cat", "dog" }, new List<string> { "a photo of a cat" })));
        Assert.Contains("a photo of a cat", template.Message);
        Assert.Contains("{}", template.Message);

        var gray = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 2).Select(_ => new GrayRow()));
        var channels = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(Options(new List<string> { "cat", "dog" })).Fit(gray));
        Assert.Contains("'Features'", channels.Message);
        Assert.Contains("3 channels", channels.Message);
    }

    public sealed class GrayRow
    {
        [VectorType(Side * Side)] public float[] Features { get; set; } = new float[Side * Side];
    }

    internal static float[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }
}
