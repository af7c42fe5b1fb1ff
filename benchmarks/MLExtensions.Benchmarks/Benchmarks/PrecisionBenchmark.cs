using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;
using static TorchSharp.torch;

namespace MLExtensions.Benchmarks;

/// <summary>
/// float32 against bfloat16: the matmul ceiling of the CPU, training throughput of the real trainers over a fixed amount of
/// data (MiniLM fine-tuning, ResNet-20, DefaultCnn, the MLP) and single-row scoring latency of the text classifier in both
/// scoring precisions next to float32 ONNX Runtime. Short by design: throughput only, no accuracy runs.
/// </summary>
internal sealed class PrecisionBenchmark : IBenchmark
{
    public string Name => "precision";

    public string Description => "float32 vs bfloat16: matmul GFLOP/s, training rows/s (MiniLM, ResNet-20, DefaultCnn, MLP), text scoring latency (and ONNX Runtime)";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("part", "name", "matmul, text, vision, mlp, all (default); breakdown (per-network and per-op step times) or scoring (text-network scoring levers), not part of all"),
        new("reps", "N", "timed repetitions per breakdown row (default 12)"),
        new("images", "N", "Fashion-MNIST training images per vision and MLP run (default 2048)"),
        new("test-images", "N", "Fashion-MNIST test images for the accuracy column (default 2000)"),
        new("rounds", "N", "float32/bfloat16 pairs per trainer, alternating which goes first; the best throughput is shown (default 2)"),
        new("reviews", "N", "reviews per MiniLM fine-tuning run (default 128)"),
        new("data", "folder", "Fashion-MNIST folder (default ../shared/data/fashion-mnist)"),
        new("reviews-data", "folder", "fine-food reviews folder (default ../shared/data/fine-foods)"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        string part = arguments.String("part") ?? "all";
        output.WriteLine("Benchmark precision: float32 vs bfloat16 (autocast) on this CPU");
        output.WriteLine($"  CPU native bfloat16: {CpuPrecisionSupport.NativeBFloat16Feature ?? "none"}; torch threads {get_num_threads()}; {Environment.ProcessorCount} processors");
        output.WriteLine("  'other load' = cores used by other processes during the measurement (/proc/stat); > 0.3 disturbs the figures.");
        output.WriteLine();
        if (part == "breakdown")
        {
            PrecisionBreakdown.Run(output, arguments.Int("reps", 12));
            return 0;
        }
        if (part == "scoring")
        {
            PrecisionBreakdown.Scoring(output, arguments.Int("reps", 12));
            return 0;
        }
        var table = new EchoingTable(output, "Measurement", "float32", "bfloat16", "bf16 / f32", "Other load");
        if (part is "all" or "matmul")
            MatMul(table);
        var ml = new MLContext(seed: 1);
        if (part is "all" or "text")
            Text(ml, arguments, table, output);
        int rounds = arguments.Int("rounds", 2);
        if (part is "all" or "vision" or "mlp")
        {
            var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
            int count = Math.Min(arguments.Int("images", 2048), data.Train.Count);
            int testCount = Math.Min(arguments.Int("test-images", 2000), data.Test.Count);
            var subset = new LabeledImages(data.Train.Images.Take(count).ToArray(), data.Train.Labels.Take(count).ToArray());
            var testSubset = new LabeledImages(data.Test.Images.Take(testCount).ToArray(), data.Test.Labels.Take(testCount).ToArray());
            var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(ImageRow.From(subset)));
            var view = toKey.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(subset)));
            var testView = toKey.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(testSubset)));
            double Accuracy(ITransformer model) => ml.MulticlassClassification.Evaluate(model.Transform(testView)).MicroAccuracy;
            if (part is "all" or "vision")
            {
                foreach (var architecture in new[] { ImageArchitecture.ResNet20, ImageArchitecture.DefaultCnn })
                    Throughput(table, $"{architecture} training, images/s ({count} images, 1 epoch, batch 128)", rounds, p =>
                    {
                        var trainer = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
                        {
                            ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, PixelScale = 1f,
                            Architecture = architecture, Epochs = 1, BatchSize = 128, ValidationFraction = 0, Seed = 1, Precision = p,
                        });
                        using var model = trainer.Fit(view);
                        return (trainer.LastTrainingState!.History[0].SamplesPerSecond, Accuracy(model));
                    });
            }
            if (part is "all" or "mlp")
                Throughput(table, $"MLP 784→256→128→10 training, rows/s ({count} rows, 1 epoch, batch 64)", rounds, p =>
                {
                    var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
                    {
                        HiddenLayers = new[] { 256, 128 }, Epochs = 1, BatchSize = 64, ValidationFraction = 0, Seed = 1, Precision = p,
                    });
                    using var model = trainer.Fit(view);
                    return (trainer.LastTrainingState!.History[0].SamplesPerSecond, Accuracy(model));
                });
        }
        output.WriteLine();
        output.WriteLine("Results (higher is better, except latency)");
        table.Write(output);
        return 0;
    }

    private static void MatMul(EchoingTable table)
    {
        const int n = 1024, reps = 10;
        double GFlops(ScalarType type)
        {
            using var a = randn(n, n).to(type);
            using var b = randn(n, n).to(type);
            using (matmul(a, b)) { } // warm-up
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++)
                using (matmul(a, b)) { }
            return 2.0 * n * n * n * reps / clock.Elapsed.TotalSeconds / 1e9;
        }
        var start = CpuLoad.Take();
        double f32 = GFlops(ScalarType.Float32);
        double bf16 = GFlops(ScalarType.BFloat16);
        table.AddRow($"matmul {n}², GFLOP/s", $"{f32:F0}", $"{bf16:F0}", $"{bf16 / f32:F2}×", Load(start));
    }

    /// <summary>
    /// Trains in both precisions <paramref name="rounds"/> times, alternating which goes first, and shows the best throughput
    /// of each (the least disturbed on a shared machine) and the test accuracy of the first round.
    /// </summary>
    private static void Throughput(EchoingTable table, string what, int rounds, Func<TrainingPrecision, (double Rate, double Accuracy)> run)
    {
        var start = CpuLoad.Take();
        var results = new Dictionary<TrainingPrecision, List<(double Rate, double Accuracy)>> { [TrainingPrecision.Float32] = new(), [TrainingPrecision.BFloat16] = new() };
        for (int round = 0; round < Math.Max(1, rounds); round++)
        {
            var order = round % 2 == 0
                ? new[] { TrainingPrecision.Float32, TrainingPrecision.BFloat16 }
                : new[] { TrainingPrecision.BFloat16, TrainingPrecision.Float32 };
            foreach (var precision in order)
                results[precision].Add(run(precision));
        }
        double f32 = results[TrainingPrecision.Float32].Max(r => r.Rate);
        double bf16 = results[TrainingPrecision.BFloat16].Max(r => r.Rate);
        table.AddRow(what, $"{f32:F1}", $"{bf16:F1}", $"{bf16 / f32:F2}×", Load(start));
        table.AddRow("  test accuracy after that training (first round)", $"{results[TrainingPrecision.Float32][0].Accuracy:P2}",
            $"{results[TrainingPrecision.BFloat16][0].Accuracy:P2}", "", "");
    }

    private static void Text(MLContext ml, BenchmarkArguments arguments, EchoingTable table, TextWriter output)
    {
        string folder = FineFoodReviews.Folder(arguments.String("reviews-data"), RepositoryPaths.Root());
        var rows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.Int("reviews", 128)).ToList();
        var test = FineFoodReviews.Load(ml, folder, "test.csv").Take(120).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var models = new Dictionary<TrainingPrecision, ITransformer>();
        Throughput(table, $"MiniLM fine-tuning, reviews/s ({rows.Count} reviews, 1 epoch, max length 128, batch 16)", arguments.Int("rounds", 2), p =>
        {
            var trainer = ml.BinaryClassification.Trainers.TextClassifier(new TextClassifierOptions
            {
                Epochs = 1, MaxLength = 128, BatchSize = 16, ValidationFraction = 0, Seed = 1, Precision = p,
                ScoringPrecision = p == TrainingPrecision.BFloat16 ? ScoringPrecision.BFloat16 : ScoringPrecision.Float32,
            });
            var model = trainer.Fit(view);
            (models.GetValueOrDefault(p) as IDisposable)?.Dispose();
            models[p] = model;
            return (trainer.LastTrainingState!.History[0].SamplesPerSecond, TextAccuracy(ml, model, test));
        });
        var start = CpuLoad.Take();
        double f32 = Latency(ml, models[TrainingPrecision.Float32], test);
        double bf16 = Latency(ml, models[TrainingPrecision.BFloat16], test);
        table.AddRow("text classifier PredictionEngine, median ms/row (TorchSharp transformer)", $"{f32:F1}", $"{bf16:F1}", $"{f32 / bf16:F2}× faster", Load(start));
        try
        {
            start = CpuLoad.Take();
            var onnx = ml.Model.ToOnnxRuntime(models[TrainingPrecision.Float32]);
            double onnxLatency = Latency(ml, onnx, test);
            table.AddRow("text classifier PredictionEngine, median ms/row (float32 ONNX Runtime)", $"{onnxLatency:F1}", "-", "-", Load(start));
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException)
        {
            output.WriteLine($"  ONNX Runtime comparison skipped: {e.Message}");
        }
    }

    private static double TextAccuracy(MLContext ml, ITransformer model, List<FineFoodReviews.Row> rows)
    {
        var engine = ml.Model.CreatePredictionEngine<FineFoodReviews.Row, Prediction>(model);
        return rows.Count(r => engine.Predict(r).PredictedLabel == r.Label) / (double)rows.Count;
    }

    private static double Latency(MLContext ml, ITransformer model, List<FineFoodReviews.Row> rows)
    {
        var engine = ml.Model.CreatePredictionEngine<FineFoodReviews.Row, Prediction>(model);
        foreach (var row in rows.Take(20))
            engine.Predict(row);
        var times = new List<double>();
        foreach (var row in rows.Skip(20))
        {
            long t = Stopwatch.GetTimestamp();
            engine.Predict(row);
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        return Statistics.Median(times);
    }

    private static string Load(CpuSnapshot start) => CpuLoad.OtherCores(start, CpuLoad.Take()) is double cores ? $"{cores:F2} cores" : "unknown";

    /// <summary>A result table that also prints each row when it is added: a run cut short still shows what it measured.</summary>
    private sealed class EchoingTable(TextWriter output, params string[] headers)
    {
        private readonly TextTable _table = new(headers);

        public void AddRow(params string[] cells)
        {
            _table.AddRow(cells);
            output.WriteLine("  " + string.Join(" | ", cells));
            output.Flush();
        }

        public void Write(TextWriter writer) => _table.Write(writer);
    }

    private sealed class Prediction
    {
        public bool PredictedLabel { get; set; }
    }
}
