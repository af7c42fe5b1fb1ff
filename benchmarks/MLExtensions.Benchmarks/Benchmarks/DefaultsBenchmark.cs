using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Do the trainers' default options hold up away from the data they were chosen on? Compares, over several seeds, the options
/// as a user gets them (only the columns and image size set) with the recipe that met the targets on the main benchmarks,
/// on second data sets: the UCI 8 × 8 digits and generated printed digits for <c>ImageClassifierOptions</c> (the recipe: cosine schedule
/// with peak 3e-3, the best epoch kept) and a topic task built from the fine-food reviews for <c>TextClassifierOptions</c>
/// (the recipe: 256 word pieces and every row trained on).
/// </summary>
internal sealed class DefaultsBenchmark : IBenchmark
{
    public string Name => "defaults";

    public string Description => "Trainer defaults vs the measured recipes on second data sets (UCI and printed digits; a topic task from the reviews)";

    public IReadOnlyList<BenchmarkOption> Options { get; } =
    [
        new("part", "name", "image, text or all (default all)"),
        new("seeds", "list", "seeds, comma-separated (default 1,2,3)"),
        new("image-set", "name", "uci (the 8 × 8 digits in samples/data), printed (generated 28 × 28 digits) or both (default both)"),
        new("image-train", "N", "generated training images (default 3000; 2,000 more are the test set)"),
        new("image-epochs", "N", "epochs of both image recipes (default 20, the ImageClassifierOptions default)"),
        new("text-data", "folder", "fine-food folder with train.csv and test.csv (default ../shared/data/fine-foods)"),
        new("text-train", "N", "training reviews of the topic task (default 1000)"),
        new("text-precision", "name", "training precision of both text recipes: Float32, BFloat16 or Auto (default Auto, to fit the time)"),
        new("save-images", "folder", "write the first 100 generated digits there as one PNG sheet"),
        TorchSetup.ThreadsOption(),
    ];

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        TorchSetup.Apply(arguments);
        string part = arguments.String("part") ?? "all";
        int[] seeds = (arguments.String("seeds") ?? "1,2,3").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        output.WriteLine("Benchmark defaults: trainer defaults vs measured recipes on second data sets");
        output.WriteLine($"  Torch: {TorchSharp.torch.get_num_threads()} threads; {Environment.ProcessorCount} processors; seeds {string.Join(", ", seeds)}");
        output.WriteLine();
        if (part is "all" or "image")
            Images(arguments, output, seeds);
        if (part is "all" or "text")
            Topics(arguments, output, seeds);
        return 0;
    }

    private static void Images(BenchmarkArguments arguments, TextWriter output, int[] seeds)
    {
        string set = arguments.String("image-set") ?? "both";
        if (set is "both" or "uci")
        {
            var (train, test) = OpticalDigits.Split(OpticalDigits.Load(RepositoryPaths.Root()), testCount: 500, seed: 7);
            output.WriteLine($"UCI optical digits (samples/data/digits.csv.gz): {train.Count} training, {test.Count} test images of 8 × 8");
            CompareImageRecipes(arguments, output, seeds, "DefaultCnn on the UCI 8 × 8 digits", train, test, OpticalDigits.Side);
        }
        if (set is "both" or "printed")
        {
            var train = PrintedDigits.Generate(arguments.Int("image-train", 3000), seed: 101);
            var test = PrintedDigits.Generate(2000, seed: 202);
            output.WriteLine($"Printed digits (generated): {train.Count} training, {test.Count} test images of 28 × 28, {PrintedDigits.Typefaces.Count} typefaces");
            if (arguments.String("save-images") is string folder)
                SaveSheet(train, Path.Combine(folder, "printed-digits.png"), output);
            CompareImageRecipes(arguments, output, seeds, "DefaultCnn on printed digits", train, test, 28);
        }
    }

    private static void CompareImageRecipes(BenchmarkArguments arguments, TextWriter output, int[] seeds, string title, LabeledImages train, LabeledImages test, int side)
    {
        var ml = new MLContext(seed: 1);
        // ImageRow declares 28 × 28 pixels; a schema definition gives the vector its real size.
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[nameof(ImageRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, side * side);
        IDataView Load(LabeledImages images) => ml.Data.LoadFromEnumerable(ImageRow.From(images), schema);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(Load(train));
        var trainView = ml.Data.Cache(keys.Transform(Load(train)));
        var testView = ml.Data.Cache(keys.Transform(Load(test)));
        int epochs = arguments.Int("image-epochs", 20);

        ImageClassifierOptions Defaults(int seed) => new()
        {
            ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = side, ImageWidth = side, PixelScale = 1f, Epochs = epochs, Seed = seed,
        };
        var recipes = new (string Name, Func<int, ImageClassifierOptions> Options)[]
        {
            ("constant 1e-3, early stopping after 5 epochs (the old defaults)", seed =>
            {
                var o = Defaults(seed);
                o.Optimizer.LearningRate = 1e-3;
                o.LearningRateSchedule.Kind = LearningRateScheduleKind.Constant;
                o.EarlyStopping.Patience = 5;
                o.EarlyStopping.Monitor = EarlyStoppingMonitor.ValidationLoss;
                return o;
            }),
            ("cosine from 3e-3, best epoch on validation accuracy (the vision benchmark's recipe)", seed =>
            {
                var o = Defaults(seed);
                o.Optimizer.LearningRate = 3e-3;
                o.LearningRateSchedule.Kind = LearningRateScheduleKind.Cosine;
                o.LearningRateSchedule.MinimumFactor = 0.01;
                o.EarlyStopping.Patience = epochs;
                o.EarlyStopping.Monitor = EarlyStoppingMonitor.ValidationMetric;
                return o;
            }),
        };
        var baseline = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(featureColumnName: nameof(ImageRow.Features));
        Compare(output, title, seeds, recipes.Select(r => (r.Name, (Func<int, double>)(seed =>
            ml.MulticlassClassification.Evaluate(ml.MulticlassClassification.Trainers.ImageClassifier(r.Options(seed)).Fit(trainView).Transform(testView)).MicroAccuracy)))
            .Append(("SdcaMaximumEntropy on the pixels (baseline)", seed => ml.MulticlassClassification.Evaluate(baseline.Fit(trainView).Transform(testView)).MicroAccuracy)));
    }

    private static void Topics(BenchmarkArguments arguments, TextWriter output, int[] seeds)
    {
        var ml = new MLContext(seed: 1);
        string folder = FineFoodReviews.Folder(arguments.String("text-data"), RepositoryPaths.Root());
        var train = ReviewTopics.From(FineFoodReviews.Load(ml, folder, "train.csv")).Take(arguments.Int("text-train", 1000)).ToList();
        var test = ReviewTopics.From(FineFoodReviews.Load(ml, folder, "test.csv"));
        output.WriteLine($"Review topics ({folder}): {train.Count} training, {test.Count} test reviews; " +
            string.Join(", ", test.GroupBy(r => r.Label).OrderBy(g => g.Key).Select(g => $"{g.Key} {100.0 * g.Count() / test.Count:F1} %")) + " of the test reviews");
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(train));
        var trainView = keys.Transform(ml.Data.LoadFromEnumerable(train));
        var testView = keys.Transform(ml.Data.LoadFromEnumerable(test));
        var precision = arguments.Enum("text-precision", TrainingPrecision.Auto);

        TextClassifierOptions Defaults(int seed) => new() { Seed = seed, Precision = precision };
        var recipes = new (string Name, Func<int, TextClassifierOptions> Options)[]
        {
            ("128 word pieces, best epoch on a 10 % validation split (the old defaults)", seed =>
            {
                var o = Defaults(seed);
                o.MaxLength = 128;
                o.ValidationFraction = 0.1;
                return o;
            }),
            ("256 word pieces, every row trained on (the text benchmark's recipe)", seed =>
            {
                var o = Defaults(seed);
                o.MaxLength = 256;
                o.ValidationFraction = 0;
                return o;
            }),
        };
        var baseline = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        Compare(output, "MiniLM on review topics", seeds, recipes.Select(r => (r.Name, (Func<int, double>)(seed =>
            ml.MulticlassClassification.Evaluate(ml.MulticlassClassification.Trainers.TextClassifier(r.Options(seed)).Fit(trainView).Transform(testView)).MicroAccuracy)))
            .Append(("FeaturizeText + SdcaMaximumEntropy (baseline)", seed => ml.MulticlassClassification.Evaluate(baseline.Fit(trainView).Transform(testView)).MicroAccuracy)));
    }

    /// <summary>Trains every recipe once per seed (recipes alternate within a seed) and prints accuracy per seed, mean and time.</summary>
    private static void Compare(TextWriter output, string title, int[] seeds, IEnumerable<(string Name, Func<int, double> Train)> recipes)
    {
        var list = recipes.ToList();
        var accuracies = list.Select(_ => new List<double>()).ToArray();
        var minutes = list.Select(_ => new List<double>()).ToArray();
        foreach (int seed in seeds)
            for (int r = 0; r < list.Count; r++)
            {
                var clock = Stopwatch.StartNew();
                double accuracy = list[r].Train(seed);
                accuracies[r].Add(accuracy);
                minutes[r].Add(clock.Elapsed.TotalMinutes);
                output.WriteLine($"  seed {seed}, {list[r].Name}: test accuracy {accuracy:P2}, {clock.Elapsed.TotalMinutes:F1} min");
            }
        output.WriteLine();
        output.WriteLine($"Results ({title})");
        var table = new TextTable(["Recipe", .. seeds.Select(s => $"Seed {s}"), "Mean", "Training min (mean)"]);
        for (int r = 0; r < list.Count; r++)
            table.AddRow([list[r].Name, .. accuracies[r].Select(a => $"{a:P2}"), $"{accuracies[r].Average():P2}", $"{minutes[r].Average():F1}"]);
        table.Write(output);
        output.WriteLine();
    }

    private static void SaveSheet(LabeledImages images, string path, TextWriter output)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var sheet = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(280, 280, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque));
        for (int i = 0; i < Math.Min(100, images.Count); i++)
            for (int p = 0; p < 784; p++)
            {
                byte value = (byte)(images.Images[i][p] * 255);
                sheet.SetPixel(i % 10 * 28 + p % 28, i / 10 * 28 + p / 28, new SkiaSharp.SKColor(value, value, value));
            }
        using var data = sheet.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        output.WriteLine($"  wrote {path}");
    }

    /// <summary>A three-class topic task made from the reviews: drinks, pet food or other food, with the words that decide the label removed.</summary>
    private static class ReviewTopics
    {
        private static readonly Regex Drink = new(@"\b(coffees?|teas?|espresso|k-?cups?|drinks?|drinking|juices?|sodas?|cocoa|chai|lattes?|beverages?|brew(ed|s|ing)?|cappuccino)\b", RegexOptions.IgnoreCase | RegexOptions.Compiled);
        private static readonly Regex Pet = new(@"\b(dogs?|cats?|pupp(y|ies)|pets?|kittens?|canine|feline|vets?)\b", RegexOptions.IgnoreCase | RegexOptions.Compiled);

        public sealed class Row
        {
            public string Text { get; set; } = "";

            public string Label { get; set; } = "";
        }

        /// <summary>
        /// Reviews that mention drinks or pets (not both) become "drink" or "pet", the others "food"; the mentions are cut out, so
        /// the model has to read the rest of the review (cups, caffeine, flavour, chewing) to tell them apart.
        /// </summary>
        public static List<Row> From(IEnumerable<FineFoodReviews.Row> reviews) => reviews
            .Select(r => (r.Text, Drink: Drink.IsMatch(r.Text), Pet: Pet.IsMatch(r.Text)))
            .Where(r => !(r.Drink && r.Pet))
            .Select(r => new Row
            {
                Text = Regex.Replace(Pet.Replace(Drink.Replace(r.Text, ""), ""), @"\s{2,}", " "),
                Label = r.Drink ? "drink" : r.Pet ? "pet" : "food",
            })
            .ToList();
    }
}
