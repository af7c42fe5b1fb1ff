using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Times, per training batch, each piece of work the library's training step does differently from a
/// hand-written loop (or in addition to it), next to the cost of a whole hand-written step. It explains a gap
/// found by <see cref="MlpBenchmark"/>: a part costing x µs per batch costs x / (hand step µs) of the throughput.
/// </summary>
/// <remarks>
/// Parts are timed in short blocks taken in turn, many times over: on a shared machine the speed drifts, and
/// taking the parts in turn exposes them to the same drift. A pass over all parts during which other processes
/// used CPU (see <see cref="CpuLoad"/>) is left out. Virtual machines also switch between a fast and a slow
/// state that no counter inside the guest shows; the best block of each part is the most stable estimate of
/// its own cost, so the percentages use it, and the median is shown next to it.
/// </remarks>
internal sealed class MlpPartsBenchmark : IBenchmark
{
    private const int Pixels = FashionMnist.Pixels;
    private const double DisturbedLoad = 0.10;

    /// <inheritdoc />
    public string Name => "mlp-parts";

    /// <inheritdoc />
    public string Description => "Per-batch cost of the library's training-step parts (batching, scaler, task, clipping) vs. a hand-written step.";

    /// <inheritdoc />
    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("data", "folder", "Fashion-MNIST folder. Default as for mlp."),
        new("batch-size", "N", "Rows per batch. Default 128."),
        new("blocks", "N", "Timed blocks per part; best and median of the undisturbed ones are reported. Default 30."),
        new("iterations", "N", "Iterations per block. Default 50."),
    };

    /// <inheritdoc />
    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        int batchSize = arguments.Int("batch-size", 128);
        int blocks = arguments.Int("blocks", 30);
        int iterations = arguments.Int("iterations", 50);
        var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
        TorchNativeLoader.EnsureLoaded();

        // The library's in-memory batch source, filled through the same reader the trainer uses.
        var ml = new MLContext(seed: 1);
        var rowsView = ml.Data.LoadFromEnumerable(ImageRow.From(data.Train));
        var view = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rowsView).Transform(rowsView);
        var label = LabelBinding.Bind(view.Schema, "Label", PredictionTask.MulticlassClassification);
        using var source = InMemoryBatchSource.Read(view, new FeatureVectorRowReader(view.Schema, "Features", label, InvalidFeatureHandling.Throw));

        long rows = data.Train.Count;
        using var features = TensorConversion.Features(data.Train);
        using var labels = TensorConversion.Labels(data.Train);
        using var generator = new Generator(1);
        using var order = torch.randperm(rows, generator: generator);
        using var fixedX = features.narrow(0, 0, batchSize).clone();
        using var fixedY = labels.narrow(0, 0, batchSize).clone();

        // The library's network as the trainer builds it for FeatureScaling.None (identity scaler, then the layers).
        var options = new NeuralNetworkOptions { HiddenLayers = new[] { 256, 128 }, Dropout = 0, FeatureScaling = FeatureScaling.None };
        using var libraryNetwork = new MultiLayerPerceptron(Pixels, FashionMnist.Classes, options, null);
        var task = new SupervisedTask(libraryNetwork, new CrossEntropyLoss(), PredictionTask.MulticlassClassification);
        using var libraryOptimizer = AdamW(libraryNetwork.parameters());
        using var handNetwork = HandNetwork();
        var handParameters = handNetwork.parameters().ToList();
        using var handOptimizer = AdamW(handParameters);
        using var scaledNetwork = nn.Sequential(("scaler", new FeatureStandardizer(Pixels)), ("mlp", HandNetwork()));
        using var scaledOptimizer = AdamW(scaledNetwork.parameters());
        using var scaler = new FeatureStandardizer(Pixels);
        libraryNetwork.train();
        handNetwork.train();
        scaledNetwork.train();

        long handStart = 0;
        IEnumerator<Batch>? libraryBatches = null;
        int libraryEpoch = 0;

        var parts = new (string Name, string Meaning, Action Step)[]
        {
            ("hand step", "narrow + 2 index_select, forward, cross_entropy, backward, AdamW step, item() (the reference)", () =>
            {
                using var scope = torch.NewDisposeScope();
                var index = order.narrow(0, handStart, batchSize);
                handStart = (handStart + batchSize) % (rows - batchSize);
                var loss = nn.functional.cross_entropy(handNetwork.call(features.index_select(0, index)), labels.index_select(0, index));
                handOptimizer.zero_grad();
                loss.backward();
                handOptimizer.step();
                _ = loss.item<float>();
            }),
            ("hand step, fixed", "the hand-written step on one fixed batch (no batching)", () =>
            {
                using var scope = torch.NewDisposeScope();
                var loss = nn.functional.cross_entropy(handNetwork.call(fixedX), fixedY);
                handOptimizer.zero_grad();
                loss.backward();
                handOptimizer.step();
                _ = loss.item<float>();
            }),
            ("library step, fixed", "SupervisedTask.Forward/ComputeLoss on MultiLayerPerceptron, in TrainingLoop's order, on the fixed batch", () =>
            {
                using var scope = torch.NewDisposeScope();
                using var batch = new Batch(new[] { fixedX.alias() }, new[] { fixedY.alias() }, batchSize);
                var loss = task.ComputeLoss(task.Forward(batch), batch);
                _ = loss.item<float>();
                loss.backward();
                libraryOptimizer.step();
                libraryOptimizer.zero_grad();
            }),
            ("hand step + scaler, fixed", "the hand-written step with an identity FeatureStandardizer as first layer", () =>
            {
                using var scope = torch.NewDisposeScope();
                var loss = nn.functional.cross_entropy(scaledNetwork.call(fixedX), fixedY);
                scaledOptimizer.zero_grad();
                loss.backward();
                scaledOptimizer.step();
                _ = loss.item<float>();
            }),
            ("hand batch", "order.narrow + index_select of features and labels", () =>
            {
                using var scope = torch.NewDisposeScope();
                var index = order.narrow(0, handStart, batchSize);
                handStart = (handStart + batchSize) % (rows - batchSize);
                _ = features.index_select(0, index);
                _ = labels.index_select(0, index);
            }),
            ("library batch", "InMemoryBatchSource.GetBatches (managed shuffle, index tensor per batch) + Batch.To(CPU)", () =>
            {
                using var scope = torch.NewDisposeScope();
                if (libraryBatches is null || !libraryBatches.MoveNext())
                {
                    libraryBatches?.Dispose();
                    libraryBatches = source.GetBatches(libraryEpoch++, batchSize, shuffle: true, seed: 1).GetEnumerator();
                    libraryBatches.MoveNext();
                }
                using var batch = libraryBatches.Current.To(CPU);
            }),
            ("identity scaler", "FeatureStandardizer forward alone with FeatureScaling.None: (x − 0) × 1", () =>
            {
                using var scope = torch.NewDisposeScope();
                _ = scaler.call(fixedX);
            }),
            ("ParameterGroups()", "SupervisedTask.ParameterGroups(); TrainingLoop calls it every step when clipping is on", () =>
            {
                _ = task.ParameterGroups();
            }),
            ("clip_grad_norm_", "clip_grad_norm_ over the 6 parameter tensors (GradientClippingNorm)", () =>
            {
                using var scope = torch.NewDisposeScope();
                nn.utils.clip_grad_norm_(handParameters, 1.0);
            }),
        };

        output.WriteLine($"Benchmark mlp-parts: per-batch cost, batch {batchSize}, {torch.get_num_threads()} torch threads, " +
                         $"{blocks} blocks × {iterations} iterations per part");
        var (samples, discarded) = Measure(parts.Select(p => p.Step).ToArray(), blocks, iterations);
        if (discarded == blocks)
            output.WriteLine("WARNING: other processes used CPU during every pass; the numbers below include their interference.");
        else if (discarded > 0)
            output.WriteLine($"Left out {discarded} of {blocks} passes during which other processes used more than {DisturbedLoad:F2} cores.");
        libraryBatches?.Dispose();

        double reference = samples[0].Min();
        var table = new TextTable("Part", "best µs/batch", "median µs/batch", "best, % of hand step");
        for (int p = 0; p < parts.Length; p++)
            table.AddRow(parts[p].Name, $"{samples[p].Min():F1}", $"{Statistics.Median(samples[p]):F1}", $"{samples[p].Min() / reference:P1}");
        output.WriteLine();
        table.Write(output);
        output.WriteLine();
        foreach (var part in parts)
            output.WriteLine($"  {part.Name}: {part.Meaning}");
        return 0;
    }

    /// <summary>Times every part in turn, <paramref name="blocks"/> times; returns the per-iteration µs of the undisturbed passes.</summary>
    private static (List<double>[] Samples, int Discarded) Measure(Action[] parts, int blocks, int iterations)
    {
        // One untimed block per part: JIT, kernel selection, allocator.
        foreach (var part in parts)
            for (int i = 0; i < iterations; i++)
                part();
        var quiet = parts.Select(_ => new List<double>()).ToArray();
        var disturbed = parts.Select(_ => new List<double>()).ToArray();
        var pass = new double[parts.Length];
        for (int b = 0; b < blocks; b++)
        {
            var load = CpuLoad.Take();
            for (int p = 0; p < parts.Length; p++)
            {
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < iterations; i++)
                    parts[p]();
                pass[p] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / iterations;
            }
            // A whole pass (about a second) is long enough for /proc/stat's 10 ms ticks to resolve a tenth of a core.
            var target = (CpuLoad.OtherCores(load, CpuLoad.Take()) ?? 0) <= DisturbedLoad ? quiet : disturbed;
            for (int p = 0; p < parts.Length; p++)
                target[p].Add(pass[p]);
        }
        int discarded = disturbed[0].Count;
        return (discarded == blocks ? disturbed : quiet, discarded);
    }

    private static nn.Module<Tensor, Tensor> HandNetwork() => nn.Sequential(
        ("fc0", nn.Linear(Pixels, 256)), ("act0", nn.ReLU()), ("fc1", nn.Linear(256, 128)), ("act1", nn.ReLU()), ("head", nn.Linear(128, FashionMnist.Classes)));

    private static optim.Optimizer AdamW(IEnumerable<TorchSharp.Modules.Parameter> parameters) =>
        optim.AdamW(parameters, 3e-3, 0.9, 0.999, 1e-8, 1e-4);
}
