using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Vision;

namespace MLExtensions.Samples;

/// <summary>
/// Fashion-MNIST with the image classifier: trains the default CNN on the subset shipped in samples/data
/// (2,000 training and 500 test images) or on the full data set given with --data, evaluates it next to ML.NET's
/// SdcaMaximumEntropy on the same pixels, prints and saves the confusion matrix and training curves, saves the model,
/// reloads it and predicts. Options: --data &lt;folder with the four IDX .gz files&gt;  --epochs N (default 12)
/// --architecture Name  --augmentation on|off (random crops and flips; default off, it pays off over longer runs)  --seed N
/// --output &lt;folder&gt;.
/// </summary>
internal static class VisionSample
{
    internal static readonly string[] ClassNames = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    internal sealed class Item
    {
        [VectorType(28 * 28)]
        public byte[] Pixels { get; set; } = Array.Empty<byte>();

        public string Label { get; set; } = "";
    }

    private sealed class Prediction
    {
        public string PredictedClass { get; set; } = "";

        public float[] Score { get; set; } = Array.Empty<float>();
    }

    public static int Run(string[] args)
    {
        string data = Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        int epochs = int.Parse(Option(args, "--epochs") ?? "12");
        var architecture = Enum.Parse<ImageArchitecture>(Option(args, "--architecture") ?? nameof(ImageArchitecture.DefaultCnn));
        bool augmentation = (Option(args, "--augmentation") ?? "off") == "on";
        int seed = int.Parse(Option(args, "--seed") ?? "1");
        string output = Path.GetFullPath(Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);

        var ml = new MLContext(seed: seed);
        var train = ml.Data.LoadFromEnumerable(Load(data, "train"));
        var test = ml.Data.LoadFromEnumerable(Load(data, "t10k"));
        Console.WriteLine($"Fashion-MNIST from {data}: {train.GetRowCount()} training and {test.GetRowCount()} test images.\n");

        var options = ImageOptions(architecture, epochs);
        if (augmentation)
            options.Augmentation = new ImageAugmentationOptions { RandomCropPadding = 2, HorizontalFlip = true };
        using var progress = new ConsoleProgress(epochs, $"Training {architecture} on Fashion-MNIST");
        options.Progress = progress;
        options.ProgressInterval = 5;
        var trainer = ml.MulticlassClassification.Trainers.ImageClassifier(options);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(trainer)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var clock = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        var trainingTime = clock.Elapsed;
        progress.Dispose();
        var state = trainer.LastTrainingState!;
        Console.WriteLine($"\nStopped after {state.EpochsCompleted} epochs ({state.StopReason}); kept epoch {state.BestEpoch}.");

        // ML.NET's own multiclass trainer on the same pixels, for comparison.
        clock.Restart();
        var baseline = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.Transforms.Conversion.ConvertType("Features", nameof(Item.Pixels), DataKind.Single))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy())
            .Fit(train);
        var baselineTime = clock.Elapsed;

        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        var baselineMetrics = ml.MulticlassClassification.Evaluate(baseline.Transform(test));
        Console.WriteLine($"\n{"Model",-28} {"Test accuracy",14} {"Log-loss",9} {"Training",10}");
        Console.WriteLine($"{architecture + " (MLExtensions)",-28} {metrics.MicroAccuracy,14:P2} {metrics.LogLoss,9:F3} {trainingTime.TotalSeconds,8:F1} s");
        Console.WriteLine($"{"SdcaMaximumEntropy (ML.NET)",-28} {baselineMetrics.MicroAccuracy,14:P2} {baselineMetrics.LogLoss,9:F3} {baselineTime.TotalSeconds,8:F1} s\n");
        Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
        var classes = model.OfType<ImageClassifierTransformer>().Single().ClassNames;
        string curves = Path.Combine(output, "vision-training-curves.png");
        string confusion = Path.Combine(output, "vision-confusion-matrix.png");
        Charts.TrainingCurves(state, curves);
        Charts.ConfusionMatrix(metrics.ConfusionMatrix.Counts, classes ?? ClassNames, confusion);
        Console.WriteLine($"Wrote {curves}\nWrote {confusion}");

        string modelPath = Path.Combine(output, "fashion-model.zip");
        ml.Model.Save(model, train.Schema, modelPath);
        var reloaded = new MLContext().Model.Load(modelPath, out _);
        var engine = ml.Model.CreatePredictionEngine<Item, Prediction>(reloaded);
        Console.WriteLine($"\nSaved and reloaded {modelPath} ({new FileInfo(modelPath).Length / 1024.0:F0} KiB). Predictions:");
        foreach (var item in Load(data, "t10k").Take(5))
        {
            var p = engine.Predict(item);
            Console.WriteLine($"  {item.Label,-12} → {p.PredictedClass,-12} (p = {p.Score.Max():P1})");
        }
        return 0;
    }

    /// <summary>
    /// The samples' image classifier settings for Fashion-MNIST: 1 × 28 × 28 byte pixels and the trainer's defaults (a cosine
    /// schedule from a 3e-3 peak, the best validation epoch kept, no augmentation: in a run this short it costs more than it gives).
    /// </summary>
    internal static ImageClassifierOptions ImageOptions(ImageArchitecture architecture, int epochs) => new()
    {
        ImageColumnName = nameof(Item.Pixels),
        ImageChannels = 1,
        ImageHeight = 28,
        ImageWidth = 28,
        Architecture = architecture,
        Epochs = epochs,
    };

    internal static IEnumerable<Item> Load(string folder, string prefix)
    {
        var images = IdxFile.ReadImages(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"));
        var labels = IdxFile.ReadLabels(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"));
        for (int i = 0; i < images.Count; i++)
            yield return new Item { Pixels = images.Image(i).ToArray(), Label = ClassNames[labels[i]] };
    }

    internal static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
