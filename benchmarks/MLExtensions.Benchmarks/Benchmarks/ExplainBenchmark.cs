using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Explainability;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Cost and quality of explanations: integrated gradients (50 steps) per Fashion-MNIST image on the default CNN and per
/// review on fine-tuned MiniLM, next to one training step on a batch of 50 of the same rows; KernelSHAP on LightGbm
/// (breast cancer): time per row and error against exact enumeration; deletion faithfulness of the CNN's attributions.
/// </summary>
internal sealed class ExplainBenchmark : IBenchmark
{
    public string Name => "explain";

    public string Description => "integrated gradients vs a training step (CNN, MiniLM), KernelSHAP on LightGbm (time, error vs exact), deletion faithfulness";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("part", "cnn|text|kernel|all", "what to run (default all)"),
        new("data", "folder", "Fashion-MNIST folder (default ../shared/data/fashion-mnist, else the samples subset)"),
        new("reviews-data", "folder", "fine-foods folder with train.csv and test.csv (default ../shared/data/fine-foods)"),
        new("train-images", "N", "images the CNN trains on (default 6000)"),
        new("images", "N", "test images explained (default 40)"),
        new("reviews", "N", "reviews MiniLM is fine-tuned on, one epoch (default 320)"),
        new("explained-reviews", "N", "test reviews explained (default 6)"),
        new("kernel-rows", "N", "breast-cancer rows explained by KernelSHAP (default 5)"),
        TorchSetup.ThreadsOption(),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        TorchSetup.Apply(arguments);
        string part = arguments.String("part") ?? "all";
        output.WriteLine($"explain benchmark ({Environment.ProcessorCount} processors, {torch.get_num_threads()} torch threads). Other load = cores used by other processes while a part ran.");
        if (part is "all" or "cnn")
            Cnn(arguments, output);
        if (part is "all" or "text")
            Text(arguments, output);
        if (part is "all" or "kernel")
            Kernel(arguments, output);
        return 0;
    }

    private static void Cnn(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
        int trainCount = Math.Min(arguments.Int("train-images", 6000), data.Train.Count);
        var train = ml.Data.LoadFromEnumerable(ImageRow.From(data.Train).Take(trainCount).ToList());
        var options = new ImageClassifierOptions
        {
            ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, PixelScale = 1f,
            Architecture = ImageArchitecture.DefaultCnn, Epochs = 2, BatchSize = 64, ValidationFraction = 0, Seed = 1,
        };
        output.WriteLine();
        output.WriteLine($"CNN: DefaultCnn trained 2 epochs on {trainCount} Fashion-MNIST images ({data.Origin})");
        var chain = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ImageClassifier(options)).Fit(train);
        var model = chain.LastTransformer;
        int count = Math.Min(arguments.Int("images", 40), data.Test.Count);
        var testRows = ImageRow.From(data.Test).Take(count).ToList();
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Baseline = BaselineKind.Zeros, Steps = 50 }).Fit(train);

        var load = CpuLoad.Take();
        var (attributions, seconds) = ExplainEach(ml, explainer, testRows);
        double igMs = Statistics.Median(seconds) * 1000;
        double otherIg = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;

        // Deletion: mask (set to 0, the black background) the 10 % most-attributed pixels, or 10 % random pixels.
        var network = model.Classifier;
        var images = testRows.Select(r => r.Features).ToArray();
        var original = Probabilities(network, images);
        var predicted = original.Select(p => Array.IndexOf(p, p.Max())).ToArray();
        int masked = FashionMnist.Pixels / 10;
        var random = new Random(7);
        var top = images.Select((image, n) => Mask(image, attributions[n].Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(masked).Select(p => p.i))).ToArray();
        var randomMasked = images.Select(image => Mask(image, Enumerable.Range(0, FashionMnist.Pixels).OrderBy(_ => random.Next()).Take(masked))).ToArray();
        var afterTop = Probabilities(network, top);
        var afterRandom = Probabilities(network, randomMasked);
        double dropTop = Enumerable.Range(0, count).Average(n => original[n][predicted[n]] - afterTop[n][predicted[n]]);
        double dropRandom = Enumerable.Range(0, count).Average(n => original[n][predicted[n]] - afterRandom[n][predicted[n]]);

        // A training step on 50 of the same images (forward, cross-entropy, backward, Adam step), after the measurements above.
        load = CpuLoad.Take();
        var batch = torch.tensor(images.Take(50).SelectMany(i => i).ToArray(), new long[] { Math.Min(50, count), FashionMnist.Pixels });
        var labels = torch.tensor(testRows.Take(50).Select(r => (long)r.Label).ToArray());
        double stepMs = Statistics.Median(TrainingSteps(network, () => nn.functional.cross_entropy(network.call(batch), labels))) * 1000;
        double otherStep = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;

        var table = new TextTable("CNN (Fashion-MNIST, 1×28×28)", "value", "other load");
        table.AddRow($"IG 50 steps per image (median of {count})", $"{igMs:F1} ms", $"{otherIg:F2} cores");
        table.AddRow("training step, batch of 50 (median of 10)", $"{stepMs:F1} ms", $"{otherStep:F2} cores");
        table.AddRow("IG / training step (target ≤ 1.5)", $"{igMs / stepMs:F2}", igMs / stepMs <= 1.5 ? "MET" : "MISSED");
        table.AddRow($"predicted-class probability drop, top 10 % IG pixels masked (mean of {count})", $"{dropTop:F4}", "-");
        table.AddRow($"predicted-class probability drop, random 10 % pixels masked (mean of {count})", $"{dropRandom:F4}", "-");
        table.AddRow("top 10 % lowers the probability more than random 10 %", dropTop > dropRandom ? "yes" : "no", "-");
        table.Write(output);
    }

    private static void Text(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        string folder = FineFoodReviews.Folder(arguments.String("reviews-data"), RepositoryPaths.Root());
        var trainRows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.Int("reviews", 320)).ToList();
        var testRows = FineFoodReviews.Load(ml, folder, "test.csv").Take(arguments.Int("explained-reviews", 6)).ToList();
        var options = new TextClassifierOptions { Epochs = 1, MaxLength = 128, BatchSize = 16, ValidationFraction = 0, Seed = 1 };
        options.Optimizer.LearningRate = 5e-5;
        output.WriteLine();
        output.WriteLine($"Text: MiniLM fine-tuned 1 epoch on {trainRows.Count} reviews (max length 128), {folder}");
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var model = ml.BinaryClassification.Trainers.TextClassifier(options).Fit(train);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Steps = 50 }).Fit(train);

        var load = CpuLoad.Take();
        var (attributions, seconds) = ExplainEach(ml, explainer, testRows);
        double otherIg = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;

        // Per review: a training step on a batch of 50 copies of that review (the shape of IG's batch of 50 points).
        load = CpuLoad.Take();
        var network = model.Classifier;
        var steps = new List<double>();
        foreach (var row in testRows.Take(3))
        {
            var encoded = model.Tokenizer.Encode(row.Text, null, options.MaxLength);
            var batch = TokenBatchSource.Pack(Enumerable.Repeat(encoded, 50).ToList(), model.Tokenizer.PadId);
            var labels = torch.full(50, row.Label ? 1f : 0f);
            steps.Add(Statistics.Median(TrainingSteps(network, () => nn.functional.binary_cross_entropy_with_logits(network.call(batch).squeeze(1), labels), repeats: 3)));
        }
        double otherStep = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;
        // The same reviews for both: IG's cost grows with the review's length.
        int paired = steps.Count;
        double igMs = Statistics.Median(seconds.Take(paired)) * 1000, stepMs = Statistics.Median(steps) * 1000;
        var lengths = attributions.Select(a => a.Length).ToArray();
        var table = new TextTable($"MiniLM (reviews of {lengths.Min()}–{lengths.Max()} word pieces)", "value", "other load");
        table.AddRow($"IG 50 steps per review (median of all {testRows.Count})", $"{Statistics.Median(seconds) * 1000:F0} ms", $"{otherIg:F2} cores");
        table.AddRow($"IG 50 steps per review (median of the first {paired}, lengths {string.Join(", ", lengths.Take(paired))})", $"{igMs:F0} ms", "-");
        table.AddRow($"training step, batch of 50 copies of a review (median of the same {paired})", $"{stepMs:F0} ms", $"{otherStep:F2} cores");
        table.AddRow("IG / training step (target ≤ 1.5)", $"{igMs / stepMs:F2}", igMs / stepMs <= 1.5 ? "MET" : "MISSED");
        table.Write(output);
    }

    private static void Kernel(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        string path = Path.Combine(RepositoryPaths.Root(), "tests", "MLExtensions.Tests", "TestData", "Tabular", "breast_cancer.csv");
        var loader = ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Separators = new[] { ',' }, HasHeader = true,
            Columns = new[] { new TextLoader.Column("Features", DataKind.Single, 0, 29), new TextLoader.Column("Label", DataKind.Boolean, 30) },
        });
        var data = ml.Data.Cache(loader.Load(path));
        var model = ml.BinaryClassification.Trainers.LightGbm().Fit(data);
        int rows = arguments.Int("kernel-rows", 5);
        var explained = ml.Data.TakeRows(ml.Data.SkipRows(data, 100), rows);
        var explainedRows = ml.Data.CreateEnumerable<CancerRow>(explained, false).ToList();
        output.WriteLine();
        output.WriteLine($"KernelSHAP on LightGbm (breast cancer, 30 features, Score = margin), {rows} rows");

        var load = CpuLoad.Take();
        var full = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 50 }).Fit(data);
        var (_, fullSeconds) = ExplainEach(ml, full, explainedRows);
        double otherFull = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;
        var deltas = full.Transform(explained).GetColumn<float>(ExplanationTransformer.ConvergenceDeltaColumn).ToArray();

        // 15 players (pairs of adjacent features): exact Shapley values by enumerating all 32,766 coalitions vs the default budget (2M + 2048 = 2078).
        var groups = Enumerable.Range(0, 15).Select(g => new[] { 2 * g, 2 * g + 1 }).ToArray();
        var sampledOptions = new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 20, FeatureGroups = groups };
        var exactOptions = new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 20, FeatureGroups = groups, Samples = (1 << 15) - 2 };
        load = CpuLoad.Take();
        var (sampled, sampledSeconds) = ExplainEach(ml, ml.Transforms.ExplainPredictions(model, sampledOptions).Fit(data), explainedRows);
        var (exact, exactSeconds) = ExplainEach(ml, ml.Transforms.ExplainPredictions(model, exactOptions).Fit(data), explainedRows);
        double otherGroups = CpuLoad.OtherCores(load, CpuLoad.Take()) ?? double.NaN;
        double maxError = 0, sumError = 0, sumMagnitude = 0;
        for (int n = 0; n < exact.Count; n++)
        {
            // Per player: the group's value is spread evenly over its two slots, so compare the group sums.
            for (int g = 0; g < 15; g++)
            {
                double e = exact[n][2 * g] + exact[n][2 * g + 1], s = sampled[n][2 * g] + sampled[n][2 * g + 1];
                maxError = Math.Max(maxError, Math.Abs(e - s));
                sumError += Math.Abs(e - s);
                sumMagnitude += Math.Abs(e);
            }
        }
        var table = new TextTable("KernelSHAP on LightGbm", "value", "other load");
        table.AddRow("30 features, default budget 2108 coalitions × 50 background rows: time per row", $"{Statistics.Median(fullSeconds):F2} s", $"{otherFull:F2} cores");
        table.AddRow("  max |ConvergenceDelta| (sum to f(x) − E f)", $"{deltas.Max(Math.Abs):E1}", "-");
        table.AddRow("15 pair-players × 20 background rows, default budget 2078: time per row", $"{Statistics.Median(sampledSeconds):F2} s", $"{otherGroups:F2} cores");
        table.AddRow("  exact enumeration (32,766 coalitions): time per row", $"{Statistics.Median(exactSeconds):F2} s", "-");
        table.AddRow("  mean |sampled − exact| / mean |exact|", $"{sumError / Math.Max(sumMagnitude, 1e-12):P2}", "-");
        table.AddRow("  max |sampled − exact|", $"{maxError:F4}", "-");
        table.AddRow("  mean |exact| per player", $"{sumMagnitude / (exact.Count * 15):F4}", "-");
        table.Write(output);
    }

    /// <summary>
    /// Explains the rows one at a time and times each: every row is a one-row data view read to its end, because ML.NET may
    /// compute a larger view's rows ahead of the reader on other threads.
    /// </summary>
    private static (List<float[]> Attributions, List<double> Seconds) ExplainEach<TRow>(MLContext ml, ITransformer explainer, IEnumerable<TRow> rows)
        where TRow : class
    {
        var attributions = new List<float[]>();
        var seconds = new List<double>();
        foreach (var row in rows)
        {
            var watch = Stopwatch.StartNew();
            var explained = explainer.Transform(ml.Data.LoadFromEnumerable(new[] { row }));
            attributions.Add(explained.GetColumn<float[]>(ExplanationTransformer.AttributionsColumn).Single());
            seconds.Add(watch.Elapsed.TotalSeconds);
        }
        return (attributions, seconds);
    }

    private sealed class CancerRow
    {
        [VectorType(30)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static float[] Mask(float[] image, IEnumerable<int> pixels)
    {
        var copy = (float[])image.Clone();
        foreach (int p in pixels)
            copy[p] = 0;
        return copy;
    }

    private static float[][] Probabilities(nn.Module<Tensor, Tensor> network, float[][] images)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        network.eval();
        var probabilities = torch.softmax(network.call(torch.tensor(images.SelectMany(i => i).ToArray(), new long[] { images.Length, images[0].Length })), 1);
        var flat = probabilities.data<float>().ToArray();
        int k = (int)probabilities.shape[1];
        return Enumerable.Range(0, images.Length).Select(n => flat.AsSpan(n * k, k).ToArray()).ToArray();
    }

    /// <summary>Seconds per training step (train mode, Adam), after two warm-up steps.</summary>
    private static List<double> TrainingSteps(nn.Module<Tensor, Tensor> network, Func<Tensor> loss, int repeats = 10)
    {
        network.train();
        var optimizer = torch.optim.Adam(network.parameters(), 1e-4);
        var seconds = new List<double>();
        for (int i = 0; i < repeats + 2; i++)
        {
            using var scope = torch.NewDisposeScope();
            var watch = Stopwatch.StartNew();
            optimizer.zero_grad();
            loss().backward();
            optimizer.step();
            if (i >= 2)
                seconds.Add(watch.Elapsed.TotalSeconds);
        }
        network.eval();
        return seconds;
    }
}
