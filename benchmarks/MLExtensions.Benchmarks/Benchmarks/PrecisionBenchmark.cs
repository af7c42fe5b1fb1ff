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
        new("part", "name", "matmul, text, vision, mlp, all (default) or breakdown (per-network and per-op step times, not part of all)"),
        new("reps", "N", "timed repetitions per breakdown row (default 12)"),
        new("images", "N", "Fashion-MNIST training images per vision run (default 1024)"),
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
        var table = new EchoingTable(output, "Measurement", "float32", "bfloat16", "bf16 / f32", "Other load");
        if (part is "all" or "matmul")
            MatMul(table);
        var ml = new MLContext(seed: 1);
        if (part is "all" or "text")
            Text(ml, arguments, table, output);
        if (part is "all" or "vision" or "mlp")
        {
            var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
            int count = Math.Min(arguments.Int("images", 1024), data.Train.Count);
            var subset = new LabeledImages(data.Train.Images.Take(count).ToArray(), data.Train.Labels.Take(count).ToArray());
            var view = ml.Data.LoadFromEnumerable(ImageRow.From(subset));
            view = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
            if (part is "all" or "vision")
            {
                foreach (var architecture in new[] { ImageArchitecture.ResNet20, ImageArchitecture.DefaultCnn })
                    Throughput(table, $"{architecture} training, images/s ({count} images, batch 128)", p =>
                    {
                        var trainer = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
                        {
                            ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, PixelScale = 1f,
                            Architecture = architecture, Epochs = 1, BatchSize = 128, ValidationFraction = 0, Seed = 1, Precision = p,
                        });
                        trainer.Fit(view);
                        return trainer.LastTrainingState!.History[0].SamplesPerSecond;
                    });
            }
            if (part is "all" or "mlp")
                Throughput(table, $"MLP 784→256→128→10 training, rows/s ({count} rows, batch 64)", p =>
                {
                    var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
                    {
                        HiddenLayers = new[] { 256, 128 }, Epochs = 1, BatchSize = 64, ValidationFraction = 0, Seed = 1, Precision = p,
                    });
                    trainer.Fit(view);
                    return trainer.LastTrainingState!.History[0].SamplesPerSecond;
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

    private static void Throughput(EchoingTable table, string what, Func<TrainingPrecision, double> run)
    {
        var start = CpuLoad.Take();
        double f32 = run(TrainingPrecision.Float32);
        double bf16 = run(TrainingPrecision.BFloat16);
        table.AddRow(what, $"{f32:F1}", $"{bf16:F1}", $"{bf16 / f32:F2}×", Load(start));
    }

    private static void Text(MLContext ml, BenchmarkArguments arguments, EchoingTable table, TextWriter output)
    {
        string folder = FineFoodReviews.Folder(arguments.String("reviews-data"), RepositoryPaths.Root());
        var rows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.Int("reviews", 128)).ToList();
        var test = FineFoodReviews.Load(ml, folder, "test.csv").Take(120).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var models = new Dictionary<TrainingPrecision, ITransformer>();
        Throughput(table, $"MiniLM fine-tuning, reviews/s ({rows.Count} reviews, max length 128, batch 16)", p =>
        {
            var trainer = ml.BinaryClassification.Trainers.TextClassifier(new TextClassifierOptions
            {
                Epochs = 1, MaxLength = 128, BatchSize = 16, ValidationFraction = 0, Seed = 1, Precision = p,
                ScoringPrecision = p == TrainingPrecision.BFloat16 ? ScoringPrecision.BFloat16 : ScoringPrecision.Float32,
            });
            models[p] = trainer.Fit(view);
            return trainer.LastTrainingState!.History[0].SamplesPerSecond;
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
