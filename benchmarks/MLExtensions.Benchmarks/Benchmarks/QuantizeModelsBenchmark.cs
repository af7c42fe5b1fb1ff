using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Onnx;
using MLExtensions.Onnx.Export;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;

namespace MLExtensions.Benchmarks;

/// <summary>
/// <c>mlContext.Model.Quantize</c> on trained classifiers, in one run: the fine-tuned MiniLM review classifier (float ONNX vs dynamic
/// int8 vs static int8) and a Fashion-MNIST DefaultCnn (float ONNX vs static int8): test accuracy through the ML.NET transformers,
/// ONNX Runtime throughput at batch 1 and 32 (2 intra-op threads, models timed in alternation, median round), file sizes, and the
/// TorchSharp network's own throughput for reference. Targets (text): int8 ≥ 2× float at batch 1, ≥ 1.5× at batch 32, accuracy
/// drop ≤ 1 point, file ≤ 30 %; (CNN, static int8): ≥ 1.5× throughput, accuracy drop ≤ 0.5 point.
/// </summary>
internal sealed class QuantizeModelsBenchmark : IBenchmark
{
    public string Name => "quantize-models";

    public string Description => "Model.Quantize on the fine-tuned MiniLM classifier and a Fashion-MNIST CNN: accuracy, throughput (batch 1/32), size";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("part", "name", "text, cnn or all (default all)"),
        new("teacher-model", "path", "fine-tuned MiniLM classifier zip (default benchmark-output/minilm-teacher.zip, made by the distill benchmark)"),
        new("text-data", "folder", "fine-food folder (default ../shared/data/fine-foods)"),
        new("image-data", "folder", "Fashion-MNIST folder (default ../shared/data/fashion-mnist)"),
        new("cnn-epochs", "N", "DefaultCnn training epochs (default 3)"),
        new("rows", "N", "rows timed per round (default 256)"),
        new("rounds", "N", "timing rounds; medians are reported (default 7)"),
        new("threads", "N", "ONNX Runtime intra-op threads (default 2)"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        string part = arguments.String("part") ?? "all";
        output.WriteLine("Benchmark quantize-models: mlContext.Model.Quantize on trained classifiers");
        output.WriteLine($"  {arguments.Int("threads", 2)} ONNX Runtime intra-op threads, {torch.get_num_threads()} torch threads, {Environment.ProcessorCount} processors");
        output.WriteLine();
        if (part is "all" or "text")
            Text(arguments, output);
        if (part is "all" or "cnn")
            Cnn(arguments, output);
        return 0;
    }

    private static void Text(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        string folder = FineFoodReviews.Folder(arguments.String("text-data"), RepositoryPaths.Root());
        var trainRows = FineFoodReviews.Load(ml, folder, "train.csv");
        var testRows = FineFoodReviews.Load(ml, folder, "test.csv");
        var test = ml.Data.LoadFromEnumerable(testRows);
        string path = Path.GetFullPath(arguments.String("teacher-model") ?? Path.Combine(RepositoryPaths.Root(), "benchmark-output", "minilm-teacher.zip"));
        if (!File.Exists(path))
            throw new FileNotFoundException($"No fine-tuned classifier at '{path}'; run `distill --part text --variants labels` first (it fine-tunes and saves one) or pass --teacher-model.");
        var classifier = (TextClassifierTransformer)ml.Model.Load(path, out _);
        // Calibration: training reviews (never the test set).
        var calibration = ml.Data.LoadFromEnumerable(trainRows.Take(128));
        output.WriteLine($"Text: fine-tuned MiniLM classifier from {path}; {testRows.Count} test reviews");

        var models = new List<Variant>
        {
            new("TorchSharp (not exported)", classifier, null),
            new("float32 ONNX", ml.Model.ToOnnxRuntime(classifier), null),
        };
        foreach (var (name, mode) in new[] { ("dynamic int8", QuantizationMode.DynamicInt8), ("static int8 (QDQ)", QuantizationMode.StaticInt8) })
        {
            var quantized = ml.Model.Quantize(classifier, calibration, new QuantizationOptions { Mode = mode }, out var summary);
            output.WriteLine($"  {name}: {summary}");
            models.Add(new(name, quantized, summary));
        }
        var tokenizer = classifier.Tokenizer;
        var ids = testRows.Take(arguments.Int("rows", 256)).Select(r => tokenizer.Encode(r.Text, null, classifier.MaxLength)).ToList();
        var feeds = new TextFeeds(ids, tokenizer.PadId);
        Report(ml, models, m => ml.BinaryClassification.Evaluate(m.Transform(test)).Accuracy, feeds, arguments, output,
            targets: (Speedup1: 2.0, Speedup32: 1.5, Drop: 0.01, Size: 0.30));
    }

    private static void Cnn(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var data = FashionMnist.Load(arguments.String("image-data"), RepositoryPaths.Root());
        var raw = ml.Data.LoadFromEnumerable(ImageRow.From(data.Train));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = keys.Transform(raw);
        var test = keys.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(data.Test)));
        var clock = Stopwatch.StartNew();
        var cnn = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
        {
            ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, PixelScale = 1f,
            Architecture = ImageArchitecture.DefaultCnn, Epochs = arguments.Int("cnn-epochs", 3), BatchSize = 128, Seed = 1,
            Augmentation = { RandomCropPadding = 2, HorizontalFlip = true },
        }).Fit(train);
        output.WriteLine($"CNN: DefaultCnn trained on {data.Train.Count} Fashion-MNIST images in {clock.Elapsed.TotalMinutes:F1} min; {data.Test.Count} test images");
        var calibration = ml.Data.TakeRows(train, 256);
        var quantized = ml.Model.Quantize(cnn, calibration, new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }, out var summary);
        output.WriteLine($"  static int8: {summary}");
        var models = new List<Variant>
        {
            new("TorchSharp (not exported)", cnn, null),
            new("float32 ONNX", ml.Model.ToOnnxRuntime(cnn), null),
            new("static int8 (QDQ)", quantized, summary),
        };
        var pixels = data.Test.Images.Take(arguments.Int("rows", 256)).ToList();
        Report(ml, models, m => ml.MulticlassClassification.Evaluate(m.Transform(test)).MicroAccuracy, new PixelFeeds(pixels), arguments, output,
            targets: (Speedup1: 1.5, Speedup32: 1.5, Drop: 0.005, Size: 1.0));
    }

    private sealed record Variant(string Name, ITransformer Model, QuantizationSummary? Summary);

    private static void Report(MLContext ml, List<Variant> models, Func<ITransformer, double> accuracy, IFeeds feeds, BenchmarkArguments arguments, TextWriter output,
        (double Speedup1, double Speedup32, double Drop, double Size) targets)
    {
        int threads = arguments.Int("threads", 2), rounds = arguments.Int("rounds", 7);
        var accuracies = models.Select(m => accuracy(m.Model)).ToList();
        var runners = models.Select(m => m.Model is NetworkTransformerBase network ? (IRunner)new TorchRunner(network.Network)
            : new OnnxRunner(((OnnxNetworkTransformer)m.Model).GetOnnxModel(), threads)).ToList();
        var sizes = models.Select(m => m.Model is OnnxNetworkTransformer onnx ? onnx.GetOnnxModel().LongLength : (long?)null).ToList();
        var batch1 = runners.Select(_ => new List<double>()).ToList();
        var batch32 = runners.Select(_ => new List<double>()).ToList();
        foreach (var r in runners)
            r.Run(feeds, 1, 8); // warm-up
        var otherLoad = new List<double?>();
        for (int round = 0; round < rounds; round++)
        {
            var load = CpuLoad.Take();
            for (int i = 0; i < runners.Count; i++)
            {
                // A pause before each timing lets the previous model's worker threads (ONNX Runtime's spinning pool,
                // libtorch's OpenMP team) go idle; on two cores a still-spinning pool halves the next model's speed.
                Thread.Sleep(500);
                batch1[i].Add(runners[i].Run(feeds, 1, feeds.Count));
                Thread.Sleep(500);
                batch32[i].Add(runners[i].Run(feeds, 32, feeds.Count));
            }
            otherLoad.Add(CpuLoad.OtherCores(load, CpuLoad.Take()));
        }
        int floatIndex = models.FindIndex(m => m.Name.StartsWith("float32"));
        // Speed-ups are the median of per-round ratios: each round times all models back to back, so a ratio compares
        // models measured on the same machine state, while the host's speed drifts between rounds.
        double Ratio(List<List<double>> times, int i) => Statistics.Median(times[i].Zip(times[floatIndex], (a, f) => a / f).ToList());
        var table = new TextTable("Model", "Accuracy", "File", "Rows/s batch 1", "Rows/s batch 32", "vs float (1 / 32)", "Verdict");
        for (int i = 0; i < models.Count; i++)
        {
            double b1 = Statistics.Median(batch1[i]), b32 = Statistics.Median(batch32[i]);
            string verdict = "-";
            if (models[i].Summary is { } s)
            {
                bool met = Ratio(batch1, i) >= targets.Speedup1 && Ratio(batch32, i) >= targets.Speedup32 && accuracies[floatIndex] - accuracies[i] <= targets.Drop
                    && (targets.Size >= 1 || s.Report.SizeRatio <= targets.Size);
                verdict = met ? "MET" : "MISSED";
            }
            table.AddRow(models[i].Name, $"{accuracies[i]:P2}", sizes[i] is long bytes ? $"{bytes / 1048576.0:F1} MiB" : "-",
                $"{b1:F1}", $"{b32:F1}", i == 0 ? "-" : $"{Ratio(batch1, i):F2}× / {Ratio(batch32, i):F2}×", verdict);
        }
        output.WriteLine();
        table.Write(output);
        output.WriteLine("  rows/s: median over rounds; speed-ups: median of the per-round ratios to float32");
        for (int i = 0; i < models.Count; i++)
            output.WriteLine($"  {models[i].Name} batch-1 rows/s per round: {string.Join(", ", batch1[i].Select(v => v.ToString("F1")))}");
        output.WriteLine($"  cores used by other processes per round: {string.Join(", ", otherLoad.Select(v => v is double c ? c.ToString("F2") : "?"))}");
        output.WriteLine($"  targets: ≥ {targets.Speedup1}× at batch 1, ≥ {targets.Speedup32}× at batch 32, accuracy drop ≤ {targets.Drop * 100:F1} point(s)" +
            (targets.Size < 1 ? $", file ≤ {targets.Size:P0} of float" : ""));
        output.WriteLine();
        foreach (var r in runners)
            (r as IDisposable)?.Dispose();
    }

    /// <summary>Inputs for timing, as batches of the first rows.</summary>
    private interface IFeeds
    {
        int Count { get; }

        /// <summary>ONNX inputs for rows [start, start + count).</summary>
        (string Name, OrtValue Value)[] Onnx(int start, int count);

        /// <summary>The network's input tensor for the same rows.</summary>
        torch.Tensor Torch(int start, int count);
    }

    private sealed class TextFeeds(List<TokenizedText> rows, int padId) : IFeeds
    {
        public int Count => rows.Count;

        public (string Name, OrtValue Value)[] Onnx(int start, int count)
        {
            var slice = rows.Skip(start).Take(count).ToList();
            int length = slice.Max(r => r.Length);
            var ids = new long[slice.Count * length];
            var mask = new long[ids.Length];
            var types = new long[ids.Length];
            for (int r = 0; r < slice.Count; r++)
            {
                for (int t = 0; t < length; t++)
                {
                    bool real = t < slice[r].Length;
                    ids[r * length + t] = real ? slice[r].Ids[t] : padId;
                    mask[r * length + t] = real ? 1 : 0;
                    types[r * length + t] = real ? slice[r].TypeIds[t] : 0;
                }
            }
            long[] shape = { slice.Count, length };
            return new[]
            {
                ("input_ids", OrtValue.CreateTensorValueFromMemory(ids, shape)),
                ("attention_mask", OrtValue.CreateTensorValueFromMemory(mask, shape)),
                ("token_type_ids", OrtValue.CreateTensorValueFromMemory(types, shape)),
            };
        }

        public torch.Tensor Torch(int start, int count) => TokenBatchSource.Pack(rows.Skip(start).Take(count).ToList(), padId);
    }

    private sealed class PixelFeeds(List<float[]> images) : IFeeds
    {
        public int Count => images.Count;

        private float[] Flat(int start, int count) => images.Skip(start).Take(count).SelectMany(i => i).ToArray();

        public (string Name, OrtValue Value)[] Onnx(int start, int count)
        {
            int n = Math.Min(count, images.Count - start);
            return new[] { ("pixels", OrtValue.CreateTensorValueFromMemory(Flat(start, n), new long[] { n, images[0].Length })) };
        }

        public torch.Tensor Torch(int start, int count)
        {
            int n = Math.Min(count, images.Count - start);
            return torch.tensor(Flat(start, n), new long[] { n, images[0].Length });
        }
    }

    /// <summary>Runs a model over all feeds in batches; returns rows per second.</summary>
    private interface IRunner
    {
        double Run(IFeeds feeds, int batch, int rows);
    }

    private sealed class OnnxRunner(byte[] model, int threads) : IRunner, IDisposable
    {
        private readonly InferenceSession _session = new(model, new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 });

        public double Run(IFeeds feeds, int batch, int rows)
        {
            var inputs = Enumerable.Range(0, (rows + batch - 1) / batch).Select(b => feeds.Onnx(b * batch, Math.Min(batch, rows - b * batch))).ToList();
            string output = _session.OutputMetadata.Keys.First();
            using var runOptions = new RunOptions();
            var clock = Stopwatch.StartNew();
            foreach (var feed in inputs)
            {
                using var results = _session.Run(runOptions, feed.Select(f => f.Name).ToArray(), feed.Select(f => f.Value).ToArray(), new[] { output });
            }
            clock.Stop();
            foreach (var value in inputs.SelectMany(f => f))
                value.Value.Dispose();
            return rows / clock.Elapsed.TotalSeconds;
        }

        public void Dispose() => _session.Dispose();
    }

    private sealed class TorchRunner(torch.nn.Module<torch.Tensor, torch.Tensor> network) : IRunner
    {
        public double Run(IFeeds feeds, int batch, int rows)
        {
            var inputs = Enumerable.Range(0, (rows + batch - 1) / batch).Select(b => feeds.Torch(b * batch, Math.Min(batch, rows - b * batch))).ToList();
            var clock = Stopwatch.StartNew();
            using (torch.no_grad())
            {
                foreach (var x in inputs)
                {
                    using var scope = torch.NewDisposeScope();
                    network.call(x);
                }
            }
            clock.Stop();
            foreach (var x in inputs)
                x.Dispose();
            return rows / clock.Elapsed.TotalSeconds;
        }
    }
}
