using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Multimodal;

namespace MLExtensions.Samples;

/// <summary>
/// CLIP in ML.NET pipelines, in two parts.
/// 1. Zero-shot classification with a CLIP checkpoint folder: by default the tiny random-weight CLIP of the tests (its
///    predictions mean nothing, the code path is the real one); pass --checkpoint &lt;folder&gt; with a Hugging Face CLIP
///    folder (e.g. a local copy of openai/clip-vit-base-patch32: config.json, model.safetensors, vocab.json, merges.txt)
///    to classify for real.
/// 2. LiT on the Fashion-MNIST subset shipped in samples/data: the locked ImageNet ResNet-18 and MiniLM towers, projections
///    trained contrastively on captions of 8 classes; zero-shot accuracy on all 10 classes, and a PNG of the image/text
///    similarity matrix. Options: --checkpoint &lt;folder&gt;  --data &lt;Fashion-MNIST folder&gt;  --epochs N  --output &lt;folder&gt;.
/// </summary>
internal static class ClipSample
{
    private static readonly string[] Templates = { "a photo of a {}.", "a black and white photo of a {}.", "a picture of a {}" };

    internal sealed class RgbImage
    {
        [VectorType(3 * 28 * 28)] public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    internal sealed class CaptionedImage
    {
        [VectorType(28 * 28)] public float[] Image { get; set; } = Array.Empty<float>();

        public string Caption { get; set; } = "";

        public string Label { get; set; } = "";
    }

    public static int Run(string[] args)
    {
        string data = VisionSample.Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        string checkpoint = VisionSample.Option(args, "--checkpoint") ?? Path.Combine(AppContext.BaseDirectory, "data", "clip-tiny");
        int epochs = int.Parse(VisionSample.Option(args, "--epochs") ?? "40");
        string output = Path.GetFullPath(VisionSample.Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        var test = VisionSample.Load(data, "t10k").Take(300).ToList();

        // 1. Zero-shot with a CLIP checkpoint. Fashion-MNIST is gray: the pixels are repeated into RGB planes (C×H×W, 0–255,
        //    as ExtractPixels writes them); CLIP's resize, crop and normalization run inside the model.
        using (var clip = ClipModel.Load(checkpoint))
        {
            var rgb = ml.Data.LoadFromEnumerable(test.Select(i => new RgbImage
            {
                Image = Enumerable.Repeat(i.Pixels.Select(p => (float)p), 3).SelectMany(p => p).ToArray(),
                Label = i.Label,
            }));
            var zeroShot = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(new ZeroShotImageClassifierOptions
                {
                    Model = clip,
                    PromptTemplates = ZeroShotPromptTemplates.Cifar.ToList(),
                    ImageColumnName = nameof(RgbImage.Image),
                    ImageHeight = 28,
                    ImageWidth = 28,
                }));
            var metrics = ml.MulticlassClassification.Evaluate(zeroShot.Fit(rgb).Transform(rgb));
            Console.WriteLine($"Zero-shot CLIP from {checkpoint} ({clip.Config.Vision.ImageSize}px ViT, {clip.EmbeddingDimension}-d joint space): " +
                $"accuracy {metrics.MicroAccuracy:P1} on {test.Count} test images, 18 CIFAR prompt templates" +
                (checkpoint.EndsWith("clip-tiny") ? " — random weights: pass --checkpoint <a real CLIP folder> for meaningful numbers." : "."));
        }

        // 2. LiT: train projections on captions of 8 classes (Bag and Trouser held out), then classify all 10 zero-shot.
        string[] heldOut = { "Bag", "Trouser" };
        var random = new Random(1);
        var train = VisionSample.Load(data, "train").Where(i => !heldOut.Contains(i.Label)).Select(i => new CaptionedImage
        {
            Image = i.Pixels.Select(p => (float)p).ToArray(),
            Caption = Templates[random.Next(Templates.Length)].Replace("{}", i.Label),
            Label = i.Label,
        }).ToList();
        Console.WriteLine($"\nLiT: {train.Count} captioned training images of 8 classes ({string.Join(" and ", heldOut)} held out), {epochs} epochs…");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var encoder = ml.Transforms.ImageTextEncoder(new ImageTextEncoderOptions
        {
            ImageColumnName = nameof(CaptionedImage.Image), CaptionColumnName = nameof(CaptionedImage.Caption),
            ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, ImageInputSize = 64, Epochs = epochs,
        }).Fit(ml.Data.LoadFromEnumerable(train));
        Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F1} s.");

        var testRows = test.Select(i => new CaptionedImage { Image = i.Pixels.Select(p => (float)p).ToArray(), Label = i.Label }).ToList();
        var testView = ml.Data.LoadFromEnumerable(testRows);
        var classifier = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(new ZeroShotImageClassifierOptions
            {
                Model = encoder,
                PromptTemplates = Templates,
                ImageColumnName = nameof(CaptionedImage.Image),
            }));
        var liTMetrics = ml.MulticlassClassification.Evaluate(classifier.Fit(testView).Transform(testView));
        Console.WriteLine($"LiT zero-shot accuracy over all 10 classes: {liTMetrics.MicroAccuracy:P1} (chance 10 %); per class:");
        var classes = VisionSample.ClassNames.Order(StringComparer.Ordinal).ToArray();
        var counts = liTMetrics.ConfusionMatrix.Counts;
        for (int k = 0; k < classes.Length; k++)
            Console.WriteLine($"  {classes[k],-12} {counts[k][k] / Math.Max(1, counts[k].Sum()):P0} correct{(heldOut.Contains(classes[k]) ? "  (held out)" : "")}");

        // The image/text similarity matrix: the first test image of each class against each class prompt.
        var images = VisionSample.ClassNames.Select(c => testRows.First(r => r.Label == c)).ToList();
        var imageEmbeddings = encoder.EmbedImages(images.SelectMany(r => r.Image).ToArray());
        var textEmbeddings = encoder.EmbedTexts(VisionSample.ClassNames.Select(c => (string?)$"a photo of a {c}.").ToList());
        var similarity = imageEmbeddings.Select(i => (IReadOnlyList<double>)textEmbeddings.Select(t => (double)i.Zip(t).Sum(p => p.First * p.Second)).ToList()).ToList();
        string png = Path.Combine(output, "clip-similarity-matrix.png");
        Charts.Heatmap(similarity, VisionSample.ClassNames.Select(c => $"image: {c}").ToList(), VisionSample.ClassNames, "0.00",
            "prompt \"a photo of a …\"", "test image", "LiT image/text cosine similarity (Bag, Trouser unseen in training)", png);
        Console.WriteLine($"Wrote {png}");
        encoder.Dispose();
        return 0;
    }
}
