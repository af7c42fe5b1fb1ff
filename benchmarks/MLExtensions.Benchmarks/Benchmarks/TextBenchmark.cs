using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Text;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Review sentiment ("great" vs "other") on the full fine-food split, in one run: ML.NET's FeaturizeText +
/// SdcaMaximumEntropy baseline, frozen MiniLM sentence embeddings + a linear trainer, and the fine-tuned MiniLM
/// TextClassifier (targets: ≥ 0.85 test accuracy; one epoch over the training reviews in under 10 minutes), with
/// training time per epoch and single-text PredictionEngine latency at the fine-tuning maximum length.
/// </summary>
internal sealed class TextBenchmark : IBenchmark
{
    public string Name => "text";

    public string Description => "Fine-food reviews: FeaturizeText+SDCA, SentenceEmbedding+linear, fine-tuned MiniLM TextClassifier";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("data", "folder", "folder with train.csv and test.csv (default ../shared/data/fine-foods)"),
        new("epochs", "N", "fine-tuning epochs (default 3)"),
        new("train-limit", "N", "use only the first N training reviews (smoke runs)"),
        new("part", "name", "baseline, embedding, finetune or all (default all)"),
        new("seed", "N", "seed (default 1)"),
        new("max-length", "N", "fine-tuning maximum length in tokens (default 256; at 128 the longer reviews lose their endings)"),
        new("learning-rate", "X", "fine-tuning peak learning rate (default 5e-5)"),
        new("validation-fraction", "X", "held-out share for choosing the best epoch; 0 trains on all 4,000 reviews for all epochs, like the Hugging Face reference (default 0)"),
        new("pooling", "name", "mean or cls (default mean)"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        var ml = new MLContext(seed: arguments.Int("seed", 1));
        string folder = FineFoodReviews.Folder(arguments.String("data"), RepositoryPaths.Root());
        var trainRows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.OptionalInt("train-limit") ?? int.MaxValue).ToList();
        var testRows = FineFoodReviews.Load(ml, folder, "test.csv");
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        string part = arguments.String("part") ?? "all";
        output.WriteLine("Benchmark text: fine-food review sentiment through ML.NET pipelines");
        output.WriteLine($"  Data:  {folder}: {trainRows.Count} training, {testRows.Count} test reviews ({testRows.Count(r => r.Label)} 'great' in test)");
        output.WriteLine($"  Torch: {TorchSharp.torch.get_num_threads()} threads; {Environment.ProcessorCount} processors");
        output.WriteLine();
        var table = new TextTable("Model", "Test accuracy", "Training", "Target", "Verdict");

        if (part is "all" or "baseline")
        {
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Key", "Label")
                .Append(ml.Transforms.Text.FeaturizeText("Features", "Text"))
                .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Key"));
            var (accuracy, time) = Measure(() => pipeline.Fit(train), m => ml.MulticlassClassification.Evaluate(m.Transform(test), "Key").MicroAccuracy);
            table.AddRow("FeaturizeText + SdcaMaximumEntropy (ML.NET)", $"{accuracy:P2}", $"{time.TotalMinutes:F1} min", "baseline", "-");
        }
        if (part is "all" or "embedding")
        {
            var pipeline = ml.Transforms.Text.SentenceEmbedding("Features", "Text", new SentenceEmbeddingOptions { MaxLength = 128 })
                .Append(ml.BinaryClassification.Trainers.LbfgsLogisticRegression());
            var (accuracy, time) = Measure(() => pipeline.Fit(train), m => ml.BinaryClassification.Evaluate(m.Transform(test)).Accuracy);
            table.AddRow("SentenceEmbedding (frozen MiniLM) + LbfgsLogisticRegression", $"{accuracy:P2}", $"{time.TotalMinutes:F1} min", "-", "-");
        }
        if (part is "all" or "finetune")
        {
            var options = new TextClassifierOptions
            {
                Epochs = arguments.Int("epochs", 3),
                MaxLength = arguments.Int("max-length", 256),
                BatchSize = 16,
                ProgressInterval = 25,
                ValidationFraction = arguments.OptionalNonNegativeDouble("validation-fraction") ?? 0,
                Pooling = arguments.Enum("pooling", TextPooling.Mean),
            };
            options.Optimizer.LearningRate = arguments.OptionalPositiveDouble("learning-rate") ?? 5e-5;
            output.WriteLine($"  Fine-tuning: {options.Epochs} epochs, max length {options.MaxLength}, learning rate {options.Optimizer.LearningRate}, validation fraction {options.ValidationFraction}, {options.Pooling} pooling");
            options.Progress = new Progress<MLExtensions.Core.TrainingProgress>(p =>
            {
                if (p.Phase == MLExtensions.Core.TrainingPhase.Batch)
                    output.WriteLine($"  epoch {p.Epoch} batch {p.BatchInEpoch}/{p.BatchesPerEpoch}: loss {p.TrainingLoss:F4}, {p.SamplesPerSecond:F1} reviews/s");
            });
            var trainer = ml.BinaryClassification.Trainers.TextClassifier(options);
            var (accuracy, time) = Measure(() => trainer.Fit(train), m => ml.BinaryClassification.Evaluate(m.Transform(test)).Accuracy, out var model);
            var history = trainer.LastTrainingState!.History;
            foreach (var e in history)
                output.WriteLine($"  fine-tuning epoch {e.Epoch}: {e.Seconds / 60:F1} min, loss {e.TrainingLoss:F4}" +
                    (e.ValidationMetric is double v ? $", validation accuracy {v:P2}" : ""));
            double slowestEpoch = history.Max(e => e.Seconds) / 60;
            table.AddRow($"TextClassifier (fine-tuned MiniLM, {history.Count} epochs" +
                (trainer.LastTrainingState.BestEpoch > 0 ? $", kept {trainer.LastTrainingState.BestEpoch})" : ")"), $"{accuracy:P2}", $"{time.TotalMinutes:F1} min",
                "≥ 85 %", accuracy >= 0.85 ? "MET" : "MISSED");
            table.AddRow("  slowest epoch over the training reviews", "-", $"{slowestEpoch:F1} min", "< 10 min", slowestEpoch < 10 ? "MET" : "MISSED");
            Latency(ml, model, testRows, options.MaxLength, output);
        }
        output.WriteLine();
        output.WriteLine("Results");
        table.Write(output);
        return 0;
    }

    private static (double Accuracy, TimeSpan Time) Measure<T>(Func<T> fit, Func<T, double> evaluate) => Measure(fit, evaluate, out _);

    private static (double Accuracy, TimeSpan Time) Measure<T>(Func<T> fit, Func<T, double> evaluate, out T model)
    {
        var clock = Stopwatch.StartNew();
        model = fit();
        clock.Stop();
        return (evaluate(model), clock.Elapsed);
    }

    private static void Latency(MLContext ml, ITransformer model, List<FineFoodReviews.Row> rows, int maxLength, TextWriter output)
    {
        var engine = ml.Model.CreatePredictionEngine<FineFoodReviews.Row, Prediction>(model);
        foreach (var row in rows.Take(20))
            engine.Predict(row);
        var times = new List<double>();
        foreach (var row in rows.Skip(20).Take(300))
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(row);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        times.Sort();
        output.WriteLine($"  single-review PredictionEngine latency (max length {maxLength}): median {Statistics.Median(times):F1} ms, p95 {times[(int)(0.95 * times.Count)]:F1} ms over {times.Count} reviews");
    }

    private sealed class Prediction
    {
        public bool PredictedLabel { get; set; }
    }
}
