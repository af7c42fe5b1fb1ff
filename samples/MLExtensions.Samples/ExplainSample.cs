using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Samples;

/// <summary>
/// Explains three models and writes what people look at: integrated-gradient overlays of Fashion-MNIST images (CNN), a
/// waterfall and a global summary for a wine (MLP), a token page for food reviews (fine-tuned MiniLM), and a word page
/// for the same reviews explained by KernelSHAP through a whole ML.NET pipeline (FeaturizeText + SDCA, raw text in), and a
/// patch overlay of an MLImage explained by KernelSHAP through ExtractPixels + SdcaMaximumEntropy.
/// Options: --output &lt;folder&gt; (default ./sample-output).
/// </summary>
internal static class ExplainSample
{
    private static readonly string[] WineFeatures =
    {
        "alcohol", "malic acid", "ash", "alcalinity of ash", "magnesium", "total phenols", "flavanoids", "nonflavanoid phenols",
        "proanthocyanins", "colour intensity", "hue", "OD280/OD315", "proline",
    };

    public static int Run(string[] args)
    {
        string output = Path.GetFullPath(VisionSample.Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        var parts = new (string Name, Action<MLContext, string> Run)[]
        {
            ("CNN on images", Images), ("KernelSHAP through an image pipeline", ImagesThroughAPipeline), ("wine MLP", Wine),
            ("MiniLM on reviews", Reviews), ("KernelSHAP through a text pipeline", ReviewsThroughAPipeline),
        };
        var total = System.Diagnostics.Stopwatch.StartNew();
        foreach (var (name, run) in parts)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            run(ml, output);
            Console.WriteLine($"  [{name}: training and explaining took {clock.Elapsed.TotalSeconds:F1} s]\n");
        }
        Console.WriteLine($"Total {total.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    private static void Images(MLContext ml, string output)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        var train = ml.Data.LoadFromEnumerable(VisionSample.Load(folder, "train").ToList());
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var options = new ImageClassifierOptions { ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, Epochs = 4, Seed = 1 };
        Console.WriteLine("Training a small CNN on the Fashion-MNIST subset...");
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(toKey.Transform(train));

        // Integrated gradients from a black image (the Fashion-MNIST background), for the predicted class.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Baseline = BaselineKind.Zeros }).Fit(train);
        var items = VisionSample.Load(folder, "t10k").Take(3).ToList();
        var explained = explainer.Transform(model.Transform(ml.Data.LoadFromEnumerable(items)));
        var attributions = explained.GetColumn<float[]>(ExplanationTransformer.AttributionsColumn).ToList();
        var classes = explained.GetColumn<uint>(ExplanationTransformer.ExplainedClassColumn).ToList();
        for (int i = 0; i < items.Count; i++)
        {
            string path = Path.Combine(output, $"explain-image-{i}.png");
            string predicted = model.ClassNames![(int)classes[i] - 1];
            AttributionPlots.SaveImageOverlay(path, items[i].Pixels.Select(p => (float)p).ToArray(), attributions[i], 1, 28, 28, $"true {items[i].Label}, explained {predicted}");
            Console.WriteLine($"  wrote {path}");
        }
    }

    /// <summary>A Fashion-MNIST item as an MLImage (grey in the three colour channels).</summary>
    private sealed class ImageItem
    {
        [Microsoft.ML.Transforms.Image.ImageType(28, 28)]
        public MLImage Image { get; set; } = null!;

        public string Label { get; set; } = "";

        public static ImageItem Of(VisionSample.Item item)
        {
            var bgra = new byte[item.Pixels.Length * 4];
            for (int i = 0; i < item.Pixels.Length; i++)
            {
                bgra[4 * i] = bgra[4 * i + 1] = bgra[4 * i + 2] = item.Pixels[i];
                bgra[4 * i + 3] = 255;
            }
            return new ImageItem { Image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, bgra), Label = item.Label };
        }
    }

    private static void ImagesThroughAPipeline(MLContext ml, string output)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        var train = ml.Data.LoadFromEnumerable(VisionSample.Load(folder, "train").Select(ImageItem.Of).ToList());
        Console.WriteLine("Training ExtractPixels + SdcaMaximumEntropy on Fashion-MNIST MLImages...");
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ExtractPixels("Features", "Image", scaleImage: 1f / 255))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(maximumNumberOfIterations: 10))
            .Fit(train);

        // KernelSHAP on the MLImage column: players are 7×7 patches (a 4×4 grid); an absent patch takes the mean of the
        // background images. The attributions are 3×28×28 (R, G, B), each patch's value spread over its pixels.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Image", BackgroundRows = 50 }).Fit(train);
        var items = VisionSample.Load(folder, "t10k").Take(2).Select(ImageItem.Of).ToList();
        var explained = explainer.Transform(ml.Data.LoadFromEnumerable(items));
        var attributions = explained.GetColumn<float[]>(ExplanationTransformer.AttributionsColumn).ToList();
        for (int i = 0; i < items.Count; i++)
        {
            string path = Path.Combine(output, $"explain-image-patches-{i}.png");
            AttributionPlots.SaveImageOverlay(path, items[i].Image, attributions[i], $"KernelSHAP patches, true {items[i].Label}");
            Console.WriteLine($"  wrote {path}");
        }
    }

    private static void Wine(MLContext ml, string output)
    {
        string csv = TabularSample.ExtractEmbedded("wine.csv", output);
        var rows = ml.Data.Cache(ml.Data.LoadFromTextFile<TabularSample.Wine>(csv, separatorChar: ',', hasHeader: true));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        Console.WriteLine("Training the wine MLP...");
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 32 }, Epochs = 40, Seed = 1 }).Fit(data);

        // Expected gradients against the whole data set as background: the base value is the mean predicted probability.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.GradientShap, BackgroundRows = 178 }).Fit(data);
        var explained = explainer.Transform(data);
        var first = ml.Data.TakeRows(explained, 1);
        var attributions = first.GetColumn<float[]>(ExplanationTransformer.AttributionsColumn).Single();
        float baseValue = first.GetColumn<float>(ExplanationTransformer.BaseValueColumn).Single();
        var features = first.GetColumn<float[]>("Features").Single();
        string waterfall = Path.Combine(output, "explain-wine-waterfall.png");
        AttributionPlots.SaveWaterfall(waterfall, attributions, WineFeatures, baseValue, features, title: "Wine 1: probability of its predicted cultivar");
        Console.WriteLine($"  wrote {waterfall}");

        var summary = ExplanationSummary.MeanAbsolute(explained);
        var named = summary.ToDictionary(p => WineFeatures[int.Parse(p.Key["Slot ".Length..])], p => p.Value);
        string summaryPath = Path.Combine(output, "explain-wine-summary.png");
        AttributionPlots.SaveSummary(summaryPath, named, title: "Mean |attribution| over the 178 wines");
        Console.WriteLine($"  wrote {summaryPath}");
    }

    private static void Reviews(MLContext ml, string output)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "data", "fine-foods");
        var train = ml.Data.LoadFromEnumerable(TextSample.Load(ml, Path.Combine(folder, "train.csv")).Take(300).ToList());
        Console.WriteLine("Fine-tuning MiniLM on 300 reviews (one epoch)...");
        var model = ml.BinaryClassification.Trainers.TextClassifier(new TextClassifierOptions { Epochs = 1, MaxLength = 64, BatchSize = 16, Seed = 1 }).Fit(train);

        // Integrated gradients at the word-embedding output, from padding embeddings; one value per word piece.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(train);
        var reviews = TextSample.Load(ml, Path.Combine(folder, "test.csv")).Take(4).ToList();
        var explained = explainer.Transform(model.Transform(ml.Data.LoadFromEnumerable(reviews)));
        SaveTokenPage(explained, reviews, Path.Combine(output, "explain-reviews.html"), "Why MiniLM thinks a review is great");
    }

    /// <summary>Writes the tokens of explained reviews with their attributions, each headed by its rating and P(great).</summary>
    private static void SaveTokenPage(IDataView explained, IReadOnlyList<TextSample.Labeled> reviews, string path, string title)
    {
        var tokens = explained.GetColumn<VBuffer<ReadOnlyMemory<char>>>(ExplanationTransformer.TokensColumn)
            .Select(t => (IReadOnlyList<string>)t.DenseValues().Select(x => x.ToString()).ToList()).ToList();
        var attributions = explained.GetColumn<float[]>(ExplanationTransformer.AttributionsColumn).ToList();
        var probabilities = explained.GetColumn<float>("Probability").ToList();
        var pages = tokens.Select((t, i) => (t, (IReadOnlyList<float>)attributions[i], (string?)$"review {i + 1}: rated {(reviews[i].Label ? "great" : "not great")}, P(great) = {probabilities[i]:P1}"));
        TokenAttributions.SaveHtml(path, pages, title);
        Console.WriteLine($"  wrote {path}");
    }

    private static void ReviewsThroughAPipeline(MLContext ml, string output)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "data", "fine-foods");
        var train = ml.Data.LoadFromEnumerable(TextSample.Load(ml, Path.Combine(folder, "train.csv")).Take(2000).ToList());
        Console.WriteLine("Training FeaturizeText + SdcaLogisticRegression on 2,000 reviews...");
        var model = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(train);

        // KernelSHAP on the raw text column: the players are the words (split on whitespace); an absent word is removed
        // from the text, so the base value is the score of the empty review. Any pipeline works: it is only scored.
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Text" }).Fit(train);
        var reviews = TextSample.Load(ml, Path.Combine(folder, "test.csv")).Where(r => r.Text.Split(' ').Length <= 40).Take(4).ToList();
        var explained = explainer.Transform(model.Transform(ml.Data.LoadFromEnumerable(reviews)));
        SaveTokenPage(explained, reviews, Path.Combine(output, "explain-reviews-kernelshap.html"), "KernelSHAP word attributions of a FeaturizeText + SDCA pipeline (score = logit)");
    }
}
