using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Multimodal;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Multimodal;

public class ImageTextEncoderTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _out;

    public ImageTextEncoderTests(Xunit.Abstractions.ITestOutputHelper output) => _out = output;

    private const int Side = 32;

    public sealed class CaptionedImage
    {
        [VectorType(3 * Side * Side)] public float[] Image { get; set; } = Array.Empty<float>();

        public string Caption { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private static readonly (string Name, float R, float G, float B)[] Colours =
        { ("red", 220, 30, 30), ("green", 30, 190, 40), ("blue", 30, 50, 220), ("yellow", 230, 220, 30) };

    private static readonly string[] Shapes = { "square", "circle", "stripe" };

    /// <summary>Coloured shapes on a gray, noisy background; the caption names the colour and the shape.</summary>
    internal static List<CaptionedImage> ColouredShapes(int count, int seed, string template)
    {
        var random = new Random(seed);
        var rows = new List<CaptionedImage>();
        for (int n = 0; n < count; n++)
        {
            var colour = Colours[random.Next(Colours.Length)];
            string shape = Shapes[random.Next(Shapes.Length)];
            var pixels = new float[3 * Side * Side];
            int size = random.Next(10, 18), cx = random.Next(size / 2 + 1, Side - size / 2 - 1), cy = random.Next(size / 2 + 1, Side - size / 2 - 1);
            for (int y = 0; y < Side; y++)
            {
                for (int x = 0; x < Side; x++)
                {
                    bool inside = shape switch
                    {
                        "square" => Math.Abs(x - cx) <= size / 2 && Math.Abs(y - cy) <= size / 2,
                        "circle" => (x - cx) * (x - cx) + (y - cy) * (y - cy) <= size * size / 4,
                        _ => Math.Abs(y - cy) <= 2,
                    };
                    float noise = random.Next(-20, 21);
                    pixels[y * Side + x] = Math.Clamp((inside ? colour.R : 128) + noise, 0, 255);
                    pixels[Side * Side + y * Side + x] = Math.Clamp((inside ? colour.G : 128) + noise, 0, 255);
                    pixels[2 * Side * Side + y * Side + x] = Math.Clamp((inside ? colour.B : 128) + noise, 0, 255);
                }
            }
            string label = $"{colour.Name} {shape}";
            rows.Add(new CaptionedImage { Image = pixels, Caption = template.Replace("{}", label), Label = label });
        }
        return rows;
    }

    private static ImageTextEncoderOptions Options() => new()
    {
        ImageColumnName = "Image",
        CaptionColumnName = "Caption",
        ImageHeight = Side,
        ImageWidth = Side,
        ImageInputSize = 32,
        ProjectionDimension = 32,
        Epochs = 30,
        BatchSize = 32,
        Seed = 3,
    };

    [Fact]
    public void Contrastive_training_classifies_held_out_images_by_held_out_caption_wording()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(ColouredShapes(240, 1, "a {}"));
        var encoder = ml.Transforms.ImageTextEncoder(Options()).Fit(train);
        Assert.InRange(encoder.LogitScale, 1f, 100f);

        // Held-out images, classified among all 12 classes with a caption wording never seen in training.
        var test = ColouredShapes(120, 2, "");
        var classes = Colours.SelectMany(c => Shapes.Select(s => $"{c.Name} {s}")).ToList();
        var texts = encoder.EmbedTexts(classes.Select(c => (string?)$"a picture of a {c}").ToList());
        var images = encoder.EmbedImages(test.SelectMany(r => r.Image).ToArray());
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            int best = Enumerable.Range(0, classes.Count).MaxBy(k => texts[k].Zip(images[i]).Sum(p => p.First * p.Second));
            correct += classes[best] == test[i].Label ? 1 : 0;
        }
        double accuracy = (double)correct / test.Count;
        _out.WriteLine($"held-out accuracy {accuracy:P1}");
        Assert.True(accuracy > 0.5, $"zero-shot accuracy {accuracy:P1} on held-out images (chance 8.3 %)");

        // The column the transformer adds is the same embedding.
        var scored = encoder.Transform(ml.Data.LoadFromEnumerable(test.Take(3)));
        var column = scored.GetColumn<float[]>("ImageEmbedding").ToList();
        ClipModelTests.AssertClose(images.Take(3).ToArray(), column.ToArray(), 1e-5f);

        // The image side exports to ONNX (locked ResNet-18 features → projection → normalization) and embeds alike.
        var onnxEncoder = ml.Model.ToOnnxRuntime(encoder);
        ClipModelTests.AssertClose(column.ToArray(), onnxEncoder.Transform(ml.Data.LoadFromEnumerable(test.Take(3))).GetColumn<float[]>("ImageEmbedding").ToArray(), 1e-4f);

        // Saved and reloaded, it embeds identically.
        using var temp = new TempDirectory();
        ml.Model.Save(encoder, train.Schema, temp.File("lit.zip"));
        var loaded = ml.Model.Load(temp.File("lit.zip"), out _);
        var reloaded = loaded.Transform(ml.Data.LoadFromEnumerable(test.Take(3))).GetColumn<float[]>("ImageEmbedding").ToList();
        ClipModelTests.AssertClose(column.ToArray(), reloaded.ToArray(), 0f);
        ClipModelTests.AssertClose(new[] { texts[0] }, ((ImageTextEncoderTransformer)loaded).EmbedTexts(new[] { $"a picture of a {classes[0]}" }), 1e-5f);

        // The encoder is the Model of a zero-shot classifier: same predictions as the cosine arg-max above, Evaluate works,
        // and the classifier saves and reloads with the encoder's image tower.
        var testData = ml.Data.LoadFromEnumerable(test);
        var zeroShot = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(new ZeroShotImageClassifierOptions
        {
            Model = encoder,
            ClassNames = classes,
            PromptTemplates = new List<string> { "a picture of a {}" },
            ImageColumnName = "Image",
        }).Fit(testData);
        var predicted = zeroShot.Transform(testData);
        var labels = predicted.GetColumn<uint>("PredictedLabel").Select(k => classes[(int)k - 1]).ToList();
        Assert.Equal(correct, labels.Zip(test).Count(p => p.First == p.Second.Label));
        var onnxScores = ml.Model.ToOnnxRuntime(zeroShot).Transform(testData).GetColumn<float[]>("Score").ToArray();
        ClipModelTests.AssertClose(predicted.GetColumn<float[]>("Score").ToArray(), onnxScores, 1e-4f);
        ml.Model.Save(zeroShot, testData.Schema, temp.File("zeroshot-lit.zip"));
        var zeroShotLoaded = ml.Model.Load(temp.File("zeroshot-lit.zip"), out _);
        Assert.Equal(PredictionDump.Lines(predicted), PredictionDump.Lines(zeroShotLoaded.Transform(testData)));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(testData).Transform(testData);
        var metrics = ml.MulticlassClassification.Evaluate(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(new ZeroShotImageClassifierOptions
        {
            Model = encoder,
            PromptTemplates = new List<string> { "a picture of a {}" },
            ImageColumnName = "Image",
        }).Fit(keyed).Transform(keyed));
        Assert.True(metrics.MicroAccuracy >= accuracy - 1e-9, $"with the classes limited to the labels present, accuracy {metrics.MicroAccuracy} ≥ {accuracy}");
    }

    [Fact]
    public void Fine_tuning_a_clip_models_towers_learns_the_captions_and_gives_a_zero_shot_model()
    {
        var ml = new MLContext(seed: 5);
        var rows = ColouredShapes(96, 4, "a {}");
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        double ZeroShotAccuracy(IImageTextModel model) => ml.MulticlassClassification.Evaluate(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(
            new ZeroShotImageClassifierOptions { Model = model, PromptTemplates = new List<string> { "a {}" }, ImageColumnName = "Image", ImageHeight = Side, ImageWidth = Side })
            .Fit(data).Transform(data)).MicroAccuracy;
        var probe = new[] { "a red square", "a blue stripe" };
        var fixtureBefore = ClipFixture.Model.EmbedTexts(probe);
        double before = ZeroShotAccuracy(ClipFixture.Model);

        var trainer = ml.Transforms.ImageTextEncoder(new ImageTextEncoderOptions
        {
            ClipModel = ClipFixture.Model,
            ImageHeight = Side,
            ImageWidth = Side,
            Epochs = 25,
            BatchSize = 32,
            Seed = 3,
        });
        var encoder = trainer.Fit(data);
        var history = trainer.LastTrainingState!.History;
        double after = ZeroShotAccuracy(encoder);
        _out.WriteLine($"loss {history[0].TrainingLoss:F3} → {history[^1].TrainingLoss:F3}; zero-shot accuracy on the training captions {before:P1} → {after:P1}; temperature {encoder.LogitScale:F1}");
        Assert.True(encoder.IsClip);
        Assert.True(history[^1].TrainingLoss < 0.5 * history[0].TrainingLoss, $"contrastive loss {history[0].TrainingLoss} → {history[^1].TrainingLoss}");
        Assert.True(after >= 0.5 && after >= before + 0.3, $"zero-shot accuracy {before:P1} → {after:P1} (chance 8.3 %)");
        Assert.InRange(encoder.LogitScale, 1f, 100f);
        // The checkpoint's model is copied, not changed.
        ClipModelTests.AssertClose(fixtureBefore, ClipFixture.Model.EmbedTexts(probe), 0f);

        // Embedding column = EmbedImages; save/load keeps both towers; the image side exports to ONNX.
        var few = ml.Data.TakeRows(data, 4);
        var column = encoder.Transform(few).GetColumn<float[]>("ImageEmbedding").ToArray();
        ClipModelTests.AssertClose(encoder.EmbedImages(rows.Take(4).SelectMany(r => r.Image).ToArray()), column, 1e-5f);
        using var temp = new TempDirectory();
        ml.Model.Save(encoder, data.Schema, temp.File("clip-finetuned.zip"));
        var loaded = (ImageTextEncoderTransformer)ml.Model.Load(temp.File("clip-finetuned.zip"), out _);
        ClipModelTests.AssertClose(column, loaded.Transform(few).GetColumn<float[]>("ImageEmbedding").ToArray(), 0f);
        ClipModelTests.AssertClose(encoder.EmbedTexts(probe), loaded.EmbedTexts(probe), 0f);
        ClipModelTests.AssertClose(column, ml.Model.ToOnnxRuntime(encoder).Transform(few).GetColumn<float[]>("ImageEmbedding").ToArray(), 1e-4f);
        Assert.Equal(after, ZeroShotAccuracy(loaded), 6);
    }

    [Fact]
    public void Fine_tuning_options_are_checked()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColouredShapes(4, 1, "a {}"));
        var locked = Assert.Throws<ArgumentException>(() => ml.Transforms.ImageTextEncoder(new ImageTextEncoderOptions { ClipModel = ClipFixture.Model, LockTextProjection = true, ImageHeight = Side, ImageWidth = Side }).Fit(data));
        Assert.Contains("LockTextProjection", locked.Message);
        var gray = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ImageTextEncoder(new ImageTextEncoderOptions { ClipModel = ClipFixture.Model, ImageChannels = 1, ImageHeight = Side, ImageWidth = Side }).Fit(data));
        Assert.Contains("ImageChannels", gray.Message);
    }

    [Fact]
    public void A_locked_text_projection_is_the_identity_and_stays_so()
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        using var generator = new TorchSharp.torch.Generator(1, TorchSharp.torch.CPU);
        using var projection = new ContrastiveProjection(8, 6, 6, generator, lockText: true);
        using var features = TorchSharp.torch.randn(3, 6, generator: generator);
        using var projected = projection.ProjectTexts(features);
        using var expected = TorchSharp.torch.nn.functional.normalize(features, 2.0, 1L);
        Assert.True(projected.allclose(expected, 1e-6, 1e-6));
        var trainable = new ContrastiveTask(projection).ParameterGroups().SelectMany(g => g.Parameters).ToList();
        Assert.Equal(2, trainable.Count); // the image projection and the temperature
        Assert.DoesNotContain(trainable, p => p.shape.SequenceEqual(new long[] { 6, 6 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ContrastiveProjection(8, 6, 4, generator, lockText: true));
    }

    [Fact]
    public void Symmetric_info_nce_matches_a_hand_computed_value()
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        // Two rows with different captions, logits [[2, 0], [1, 3]]: image→text CE = (log(1+e^-2) + log(1+e^-2)) / 2,
        // text→image on the transpose [[2, 1], [0, 3]] = (log(1+e^-1) + log(1+e^-3)) / 2.
        using var logits = TorchSharp.torch.tensor(new float[] { 2, 0, 1, 3 }, new long[] { 2, 2 });
        var expected = (2 * Math.Log(1 + Math.Exp(-2)) / 2 + (Math.Log(1 + Math.Exp(-1)) + Math.Log(1 + Math.Exp(-3))) / 2) / 2;
        using var batch = new MLExtensions.Core.Batch(new[] { TorchSharp.torch.zeros(2, 1) }, new[] { TorchSharp.torch.tensor(new float[] { 0, 1 }) }, 2);
        Assert.Equal(expected, Loss(logits, batch), 5);

        // Identical captions are matches for each other: rows 0 and 1 share a caption, so row 0's target is (½, ½, 0).
        using var logits3 = TorchSharp.torch.tensor(new float[] { 1, 1, 0, 1, 1, 0, 0, 0, 2 }, new long[] { 3, 3 });
        using var batch3 = new MLExtensions.Core.Batch(new[] { TorchSharp.torch.zeros(3, 1) }, new[] { TorchSharp.torch.tensor(new float[] { 5, 5, 7 }) }, 3);
        double z = Math.Log(2 * Math.E + 1), z2 = Math.Log(2 + Math.Exp(2));
        double row = -(0.5 * (1 - z) + 0.5 * (1 - z)); // rows 0 and 1 (same by symmetry)
        double expected3 = (2 * row + -(2 - z2)) / 3; // both directions equal: the matrix is symmetric
        Assert.Equal(expected3, Loss(logits3, batch3), 5);
    }

    private static double Loss(TorchSharp.torch.Tensor logits, MLExtensions.Core.Batch batch)
    {
        using var generator = new TorchSharp.torch.Generator(0, TorchSharp.torch.CPU);
        using var network = new ContrastiveProjection(1, 1, 2, generator);
        using var loss = new ContrastiveTask(network).ComputeLoss(logits, batch);
        return loss.item<float>();
    }
}
