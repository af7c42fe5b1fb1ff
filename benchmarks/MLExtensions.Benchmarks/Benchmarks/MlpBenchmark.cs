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
/// Trains the multiclass MLP (784 → 256 → 128 → 10, ReLU) on Fashion-MNIST twice in one process: through the
/// ML.NET pipeline (<c>MapValueToKey</c> → <c>NeuralNetwork</c> trainer) and with a hand-written TorchSharp
/// loop doing the same work (same network, AdamW settings, batch size, shuffling by index, loss). Reports the
/// training throughput of both per epoch, their ratio, the wall time of the pipeline's <c>Fit</c> and the
/// test accuracy of both.
/// </summary>
/// <remarks>
/// <para>Target: the pipeline reaches at least <see cref="TargetRatio"/> of the hand-written loop's samples per
/// second (mean over the epochs after the first, which pays one-off warm-up costs).</para>
/// <para>By default the two alternate epoch by epoch (a hand-written epoch runs from a training callback
/// between two pipeline epochs, outside the loop's epoch clock). Shared and virtual machines drift in speed
/// by tens of percent over a minute, far more than the margin being tested; adjacent epochs see the same
/// machine. <c>--mode sequential</c> runs the whole <c>Fit</c> and then the whole hand-written loop instead.</para>
/// </remarks>
internal sealed class MlpBenchmark : IBenchmark
{
    /// <summary>The throughput the pipeline must reach, as a fraction of the hand-written loop's.</summary>
    public const double TargetRatio = 0.90;

    /// <summary>Load from other processes (in cores) above which a measured epoch is flagged as disturbed.</summary>
    private const double DisturbedLoad = 0.10;

    /// <summary>Largest/smallest epoch throughput of one run above which the machine is taken to have changed speed.</summary>
    private const double MaxSpread = 1.10;

    private static readonly int[] HiddenLayers = { 256, 128 };
    private const double LearningRate = 3e-3;
    private const double WeightDecay = 1e-4;
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;
    private const double Epsilon = 1e-8;

    /// <inheritdoc />
    public string Name => "mlp";

    /// <inheritdoc />
    public string Description => "Multiclass MLP on Fashion-MNIST: ML.NET pipeline vs. hand-written TorchSharp loop (samples/s, ratio, test accuracy).";

    /// <inheritdoc />
    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("data", "folder", "Fashion-MNIST folder (the four *-ubyte.gz files). Default: ../shared/data/fashion-mnist next to the repository, else samples/data/fashion-mnist."),
        new("epochs", "N", "Epochs per run, ≥ 1. Default 3 (epoch 1 is treated as warm-up)."),
        new("batch-size", "N", "Rows per optimizer step. Default 128."),
        new("scaling", "none|standardize", "Input scaling inside the network; the hand loop does the same. Default none (pixels are already in [0, 1])."),
        new("mode", "interleaved|sequential", "interleaved: alternate pipeline and hand epochs; sequential: whole Fit, then whole hand loop. Default interleaved."),
        new("rounds", "N", "Repeat the comparison N times; who goes first alternates (pipeline first in odd rounds). Default 1."),
        new("threads", "N", "libtorch intra-op threads for both runs. Default: TorchSharp's default (the core count)."),
        new("clip", "norm", "Clip the global gradient norm before each step in both runs. Default: no clipping."),
        new("seed", "N", "Seed of both runs (initialisation and shuffling). Default 1."),
    };

    /// <inheritdoc />
    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        var settings = new MlpSettings(
            Epochs: arguments.Int("epochs", 3),
            BatchSize: arguments.Int("batch-size", 128),
            Scaling: arguments.Enum("scaling", FeatureScaling.None),
            Mode: arguments.Enum("mode", Mode.Interleaved),
            Rounds: arguments.Int("rounds", 1),
            Threads: arguments.OptionalInt("threads"),
            ClippingNorm: arguments.OptionalPositiveDouble("clip"),
            Seed: arguments.Int("seed", 1, minimum: 0));

        var loadClock = Stopwatch.StartNew();
        var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
        loadClock.Stop();

        TorchNativeLoader.EnsureLoaded();
        if (settings.Threads is int threads)
            torch.set_num_threads(threads);

        WriteHeader(output, data, settings, loadClock.Elapsed);

        var rounds = new List<RoundResult>();
        for (int round = 1; round <= settings.Rounds; round++)
        {
            // Alternating who goes first cancels the advantage of running second (warm caches, JIT, allocator).
            bool pipelineFirst = round % 2 == 1;
            output.WriteLine($"Round {round} ({settings.Mode.ToString().ToLowerInvariant()}, {(pipelineFirst ? "pipeline" : "hand-written loop")} first)");
            // Garbage of the previous round (hundreds of MB of row arrays) must not be collected during this one.
            CollectGarbage();
            rounds.Add(settings.Mode == Mode.Interleaved
                ? RunInterleaved(data, settings, round, pipelineFirst, output)
                : RunSequential(data, settings, round, pipelineFirst, output));
            output.WriteLine();
        }

        WriteReport(output, settings, rounds);
        return 0;
    }

    private static RoundResult RunInterleaved(FashionMnist data, MlpSettings settings, int round, bool pipelineFirst, TextWriter output)
    {
        using var hand = new HandWrittenTrainer(data, settings, output);
        var pipeline = PipelineRun.Measure(data, settings, output, hand, handEpochFirst: !pipelineFirst);
        return new RoundResult(round, pipeline, hand.Finish());
    }

    private static RoundResult RunSequential(FashionMnist data, MlpSettings settings, int round, bool pipelineFirst, TextWriter output)
    {
        RunMeasurement? pipeline = pipelineFirst ? PipelineRun.Measure(data, settings, output, null, false) : null;
        CollectGarbage();
        RunMeasurement hand;
        using (var trainer = new HandWrittenTrainer(data, settings, output))
        {
            for (int epoch = 1; epoch <= settings.Epochs; epoch++)
                trainer.TrainEpoch();
            hand = trainer.Finish();
        }
        CollectGarbage();
        pipeline ??= PipelineRun.Measure(data, settings, output, null, false);
        return new RoundResult(round, pipeline, hand);
    }

    private static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static void WriteHeader(TextWriter output, FashionMnist data, MlpSettings settings, TimeSpan loadTime)
    {
        output.WriteLine("Benchmark mlp: ML.NET pipeline vs. hand-written TorchSharp loop");
        output.WriteLine($"  Data:     {data.Folder} ({data.Origin})");
        output.WriteLine($"            {data.Train.Count} training rows, {data.Test.Count} test rows; IDX files read in {loadTime.TotalSeconds:F2} s");
        output.WriteLine($"  Network:  {FashionMnist.Pixels} → {string.Join(" → ", HiddenLayers)} → {FashionMnist.Classes}, ReLU, no dropout, " +
                         $"input scaling: {settings.Scaling.ToString().ToLowerInvariant()}");
        output.WriteLine($"  Training: AdamW (lr {LearningRate}, weight decay {WeightDecay}, betas {Beta1}/{Beta2}), batch {settings.BatchSize}, " +
                         $"{settings.Epochs} epochs, gradient clipping {(settings.ClippingNorm is double c ? $"at norm {c}" : "off")}, seed {settings.Seed}");
        output.WriteLine($"  Torch:    {torch.get_num_threads()} intra-op threads, {torch.get_num_interop_threads()} inter-op threads " +
                         $"(processor count {Environment.ProcessorCount}); device CPU; TorchSharp {typeof(torch).Assembly.GetName().Version}");
        output.WriteLine($"  Runtime:  .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        output.WriteLine($"  Mode:     {settings.Mode.ToString().ToLowerInvariant()}, {settings.Rounds} round(s)");
        output.WriteLine();
    }

    private static void WriteReport(TextWriter output, MlpSettings settings, List<RoundResult> rounds)
    {
        // The first epoch of every run pays one-off costs (JIT, libtorch's thread pool and allocator warming up;
        // in the first run also the native library's start-up), so it is shown but left out of the means.
        int skip = settings.Epochs > 1 ? 1 : 0;

        output.WriteLine("Training throughput per epoch (training part of the epoch only: batching, forward, backward, step)");
        var table = new TextTable("Epoch", "Pipeline s", "Pipeline samples/s", "Hand s", "Hand samples/s", "Pipeline/Hand", "Other load P / H");
        foreach (var round in rounds)
        {
            if (round.Round > 1)
                table.AddSeparator();
            for (int e = 0; e < settings.Epochs; e++)
            {
                var p = round.Pipeline.Epochs[e];
                var h = round.Hand.Epochs[e];
                string label = (settings.Rounds > 1 ? $"round {round.Round}, " : "") + $"{e + 1}" + (e < skip ? " (warm-up)" : "");
                table.AddRow(label, $"{p.Seconds:F2}", $"{p.SamplesPerSecond:N0}", $"{h.Seconds:F2}", $"{h.SamplesPerSecond:N0}",
                    $"{p.SamplesPerSecond / h.SamplesPerSecond:P1}", $"{Cores(p.OtherCores)} / {Cores(h.OtherCores)}");
            }
        }
        // Epochs are compared in pairs (same round, same epoch number: adjacent in time in interleaved mode).
        var pairs = rounds.SelectMany(r => r.Pipeline.Epochs.Zip(r.Hand.Epochs).Skip(skip)).ToList();
        var quiet = pairs.Where(p => (p.First.OtherCores ?? 0) <= DisturbedLoad && (p.Second.OtherCores ?? 0) <= DisturbedLoad).ToList();
        var all = Mean(pairs);
        table.AddSeparator();
        string meanLabel = (skip == 1 ? $"mean of epochs 2..{settings.Epochs}" : "mean (warm-up included)") + (settings.Rounds > 1 ? ", all rounds" : "");
        table.AddRow(meanLabel, "", $"{all.Pipeline:N0}", "", $"{all.Hand:N0}", $"{all.Ratio:P1}", "");
        bool someDisturbed = quiet.Count < pairs.Count;
        var verdict = all;
        if (someDisturbed && quiet.Count > 0)
        {
            verdict = Mean(quiet);
            table.AddRow($"mean of {quiet.Count} undisturbed pair(s)", "", $"{verdict.Pipeline:N0}", "", $"{verdict.Hand:N0}", $"{verdict.Ratio:P1}", "");
        }
        var used = someDisturbed && quiet.Count > 0 ? quiet : pairs;
        if (used.Count > 2)
        {
            // Robust to the odd pair in which the machine changed speed between the two epochs.
            double median = Statistics.Median(used.Select(p => p.First.SamplesPerSecond / p.Second.SamplesPerSecond));
            table.AddRow("median of per-epoch ratios", "", "", "", "", $"{median:P1}", "");
        }
        table.Write(output);
        output.WriteLine("  Other load: cores used by other processes (and hypervisor steal) during the epoch; 0.00 on an idle machine.");

        output.WriteLine();
        output.WriteLine("Wall time and quality");
        var summary = new TextTable("Run", "Wall s", "Training s", "Other s", "Final train loss", "Test accuracy");
        foreach (var round in rounds)
        {
            foreach (var run in new[] { round.Pipeline, round.Hand })
            {
                double training = run.Epochs.Sum(e => e.Seconds);
                string name = (run.Kind == RunKind.Pipeline ? "pipeline Fit" : "hand-written loop") + (settings.Rounds > 1 ? $" (round {round.Round})" : "");
                summary.AddRow(name, $"{run.Wall.TotalSeconds:F2}", $"{training:F2}", $"{run.Wall.TotalSeconds - training:F2}", $"{run.Epochs[^1].Loss:F4}", $"{run.TestAccuracy:P2}");
            }
        }
        summary.Write(output);
        output.WriteLine("  Wall s, pipeline: the whole Fit (IDataView over the rows, key mapping, reading every row into a tensor, training)");
        output.WriteLine("                    without the hand-written epochs that ran inside it in interleaved mode.");
        output.WriteLine("  Wall s, hand:     building the feature tensor from the same arrays, and training.  Other s = Wall s − Training s.");

        output.WriteLine();
        bool allDisturbed = someDisturbed && quiet.Count == 0;
        string basis = someDisturbed && !allDisturbed ? $"{quiet.Count} undisturbed epoch pair(s)" : $"{pairs.Count} epoch pair(s)";
        string outcome = allDisturbed ? "INCONCLUSIVE (every measured epoch was disturbed)" : verdict.Ratio >= TargetRatio ? "MET" : "NOT MET";
        output.WriteLine($"Result: pipeline/hand = {verdict.Ratio:P1} (mean samples/s {verdict.Pipeline:N0} vs {verdict.Hand:N0} over {basis}); " +
                         $"target ≥ {TargetRatio:P0}: {outcome}.");
        // Each run repeats the same work every epoch, so its own epochs should take the same time. When they do
        // not although no other process ran, the machine changed speed (other virtual machines on the host,
        // frequency scaling) and a ratio of epochs taken at different moments can be off by as much.
        double drift = Math.Max(Spread(used.Select(p => p.First)), Spread(used.Select(p => p.Second)));
        if (!allDisturbed && drift > MaxSpread)
            output.WriteLine($"WARNING: the same run's epochs differ in throughput by up to {drift - 1:P0}: the machine's speed changed during the " +
                             "benchmark, which no in-guest load counter shows. " +
                             (used.Count > 2 ? "The median of per-epoch ratios is the more reliable figure." : "Treat the ratio as unreliable; use --rounds 3 or more and compare the medians."));
        if (someDisturbed)
        {
            double worstLoad = pairs.Max(p => Math.Max(p.First.OtherCores ?? 0, p.Second.OtherCores ?? 0));
            output.WriteLine($"WARNING: other processes used up to {worstLoad:F2} cores during {pairs.Count - quiet.Count} of {pairs.Count} measured epoch pair(s). " +
                             "libtorch waits for its slowest thread, so this distorts throughput many times over" +
                             (quiet.Count > 0 ? "; the result uses the undisturbed pairs only." : "; re-run on an idle machine before trusting the ratio."));
        }
        if (skip == 0)
            output.WriteLine("Note: with one epoch the warm-up epoch is included in the means; use --epochs 3 or more for a fair ratio.");
    }

    private static string Cores(double? cores) => cores is double c ? $"{c:F2}" : "n/a";

    /// <summary>Largest over smallest throughput among <paramref name="epochs"/> (1 when fewer than two).</summary>
    private static double Spread(IEnumerable<EpochMeasurement> epochs)
    {
        var values = epochs.Select(e => e.SamplesPerSecond).ToList();
        return values.Count < 2 ? 1 : values.Max() / values.Min();
    }

    private static (double Pipeline, double Hand, double Ratio) Mean(List<(EpochMeasurement First, EpochMeasurement Second)> pairs)
    {
        double pipeline = pairs.Average(p => p.First.SamplesPerSecond);
        double hand = pairs.Average(p => p.Second.SamplesPerSecond);
        return (pipeline, hand, pipeline / hand);
    }

    /// <summary>How the two runs are scheduled.</summary>
    private enum Mode
    {
        /// <summary>Pipeline and hand-written epochs alternate inside one <c>Fit</c>.</summary>
        Interleaved,

        /// <summary>The whole pipeline <c>Fit</c>, then the whole hand-written loop (or the reverse).</summary>
        Sequential,
    }

    /// <summary>The benchmark's settings, shared by both runs.</summary>
    private sealed record MlpSettings(int Epochs, int BatchSize, FeatureScaling Scaling, Mode Mode, int Rounds, int? Threads, double? ClippingNorm, int Seed);

    private enum RunKind
    {
        Pipeline,
        HandWritten,
    }

    /// <summary>One epoch as measured: training seconds, throughput over those seconds, mean training loss.</summary>
    /// <param name="OtherCores">Cores used by other processes meanwhile (see <see cref="CpuLoad"/>); null when unknown.</param>
    private sealed record EpochMeasurement(int Epoch, double Seconds, double SamplesPerSecond, double Loss, double? OtherCores);

    /// <summary>One training run: per-epoch numbers, total wall time and accuracy on the test split.</summary>
    private sealed record RunMeasurement(RunKind Kind, IReadOnlyList<EpochMeasurement> Epochs, TimeSpan Wall, double TestAccuracy);

    private sealed record RoundResult(int Round, RunMeasurement Pipeline, RunMeasurement Hand);

    /// <summary>Training through the library: the numbers come from the trainer's own training history.</summary>
    private static class PipelineRun
    {
        /// <summary>Fits the pipeline; when <paramref name="hand"/> is given, one of its epochs runs next to each pipeline epoch.</summary>
        public static RunMeasurement Measure(FashionMnist data, MlpSettings settings, TextWriter output, HandWrittenTrainer? hand, bool handEpochFirst)
        {
            var ml = new MLContext(seed: settings.Seed);
            var options = new NeuralNetworkOptions
            {
                HiddenLayers = HiddenLayers,
                Activation = Activation.ReLU,
                Dropout = 0,
                FeatureScaling = settings.Scaling,
                Epochs = settings.Epochs,
                BatchSize = settings.BatchSize,
                ValidationFraction = 0, // the hand-written loop does not validate either
                Shuffle = true,
                // What Auto picks for this size anyway; explicit so the benchmark always measures the in-memory path.
                DataCaching = DataCaching.Memory,
                GradientClippingNorm = settings.ClippingNorm,
                NumberOfThreads = settings.Threads,
                Seed = settings.Seed,
                Progress = new EpochProgressWriter(output),
            };
            // Spelled out rather than left to defaults, so the comparison survives a change of defaults.
            options.Optimizer.Kind = OptimizerKind.AdamW;
            options.Optimizer.LearningRate = LearningRate;
            options.Optimizer.WeightDecay = WeightDecay;
            options.Optimizer.Beta1 = Beta1;
            options.Optimizer.Beta2 = Beta2;
            options.Optimizer.Epsilon = Epsilon;
            options.LearningRateSchedule.Kind = LearningRateScheduleKind.Constant;

            var hooks = new EpochHooks(hand, handEpochFirst);
            options.Callbacks.Add(hooks);

            // Keep the trainer: its LastTrainingState holds the per-epoch throughput after Fit.
            var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer);

            var clock = Stopwatch.StartNew();
            var model = pipeline.Fit(ml.Data.LoadFromEnumerable(ImageRow.From(data.Train)));
            clock.Stop();
            try
            {
                var history = trainer.LastTrainingState?.History
                    ?? throw new InvalidOperationException("The trainer recorded no training state after Fit.");
                var epochs = history.Select(e => new EpochMeasurement(e.Epoch, e.Seconds, e.SamplesPerSecond, e.TrainingLoss, hooks.OtherCores[e.Epoch - 1])).ToList();
                var wall = clock.Elapsed - hooks.HandElapsed;
                var scored = model.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(data.Test)));
                double accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
                output.WriteLine($"  pipeline: Fit {wall.TotalSeconds:F2} s{(hand is null ? "" : " (without the hand-written epochs)")}, test accuracy {accuracy:P2}");
                return new RunMeasurement(RunKind.Pipeline, epochs, wall, accuracy);
            }
            finally
            {
                (model as IDisposable)?.Dispose();
            }
        }

        /// <summary>
        /// Measures the load of other processes over each pipeline epoch and, in interleaved mode, runs one
        /// hand-written epoch before or after it. The loop calls these hooks outside its epoch clock; one class
        /// does both so the load window never contains the hand-written epoch.
        /// </summary>
        private sealed class EpochHooks(HandWrittenTrainer? hand, bool handFirst) : ITrainingCallback
        {
            private CpuSnapshot _start;

            /// <summary>Cores used by other processes during each pipeline epoch.</summary>
            public List<double?> OtherCores { get; } = new();

            /// <summary>Wall time spent in hand-written epochs, to take out of the pipeline's Fit time.</summary>
            public TimeSpan HandElapsed { get; private set; }

            public void OnEpochBegin(TrainingRun run)
            {
                if (handFirst)
                    TrainHandEpoch();
                _start = CpuLoad.Take();
            }

            public void OnEpochEnd(TrainingRun run, TrainingControl control)
            {
                OtherCores.Add(CpuLoad.OtherCores(_start, CpuLoad.Take()));
                if (!handFirst)
                    TrainHandEpoch();
            }

            private void TrainHandEpoch()
            {
                if (hand is null)
                    return;
                long start = Stopwatch.GetTimestamp();
                hand.TrainEpoch();
                HandElapsed += Stopwatch.GetElapsedTime(start);
            }
        }

        /// <summary>Prints the loop's end-of-epoch reports; synchronous, unlike <see cref="Progress{T}"/>, so lines keep their order.</summary>
        private sealed class EpochProgressWriter(TextWriter output) : IProgress<TrainingProgress>
        {
            public void Report(TrainingProgress value)
            {
                if (value.Phase == TrainingPhase.EpochEnd)
                    output.WriteLine($"  pipeline epoch {value.Epoch}/{value.TotalEpochs}: loss {value.TrainingLoss:F4}, {value.SamplesPerSecond,7:N0} samples/s");
            }
        }
    }

    /// <summary>
    /// The reference: the loop a TorchSharp user would write. All rows in one float tensor, a seeded
    /// <c>randperm</c> per epoch, <c>index_select</c> per batch, cross-entropy, backward, AdamW step. It does
    /// the work the library does for the same settings and nothing more. Epochs run one call at a time so
    /// they can alternate with the pipeline's.
    /// </summary>
    private sealed class HandWrittenTrainer : IDisposable
    {
        private readonly LabeledImages _test;
        private readonly MlpSettings _settings;
        private readonly TextWriter _output;
        private readonly Tensor _features;
        private readonly Tensor _labels;
        private readonly Tensor? _mean;
        private readonly Tensor? _inverseStd;
        private readonly nn.Module<Tensor, Tensor> _network;
        private readonly List<TorchSharp.Modules.Parameter> _parameters;
        private readonly optim.Optimizer _optimizer;
        private readonly Generator _shuffling;
        private readonly List<EpochMeasurement> _epochs = new();
        private readonly TimeSpan _setup;
        private TimeSpan _training;

        public HandWrittenTrainer(FashionMnist data, MlpSettings settings, TextWriter output)
        {
            _test = data.Test;
            _settings = settings;
            _output = output;
            var clock = Stopwatch.StartNew();
            _features = TensorConversion.Features(data.Train);
            _labels = TensorConversion.Labels(data.Train);
            // With --scaling standardize the library standardizes inside the network; do the same per batch.
            if (settings.Scaling == FeatureScaling.Standardize)
                (_mean, _inverseStd) = Standardization(_features);

            // The library draws initial weights from a per-run generator; the global seed is the plain-TorchSharp
            // equivalent (same uniform ±1/√fan_in distributions). Equal draws are not needed: the runs are
            // compared on speed, and accuracy only has to show that both trained.
            torch.random.manual_seed(settings.Seed);
            _network = nn.Sequential(
                ("fc0", nn.Linear(FashionMnist.Pixels, HiddenLayers[0])),
                ("act0", nn.ReLU()),
                ("fc1", nn.Linear(HiddenLayers[0], HiddenLayers[1])),
                ("act1", nn.ReLU()),
                ("head", nn.Linear(HiddenLayers[1], FashionMnist.Classes)));
            _parameters = _network.parameters().ToList();
            _optimizer = torch.optim.AdamW(_parameters, LearningRate, Beta1, Beta2, Epsilon, WeightDecay);
            _shuffling = new Generator((ulong)settings.Seed);
            _setup = clock.Elapsed;
        }

        /// <summary>Trains one epoch and prints it.</summary>
        public void TrainEpoch()
        {
            long rows = _features.shape[0];
            int batchSize = _settings.BatchSize;
            _network.train();
            var load = CpuLoad.Take();
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            using (var order = torch.randperm(rows, generator: _shuffling))
            {
                for (long start = 0; start < rows; start += batchSize)
                {
                    using var scope = torch.NewDisposeScope();
                    long count = Math.Min(batchSize, rows - start);
                    var index = order.narrow(0, start, count);
                    var x = _features.index_select(0, index);
                    var y = _labels.index_select(0, index);
                    if (_mean is not null)
                        x = (x - _mean) * _inverseStd!;
                    var loss = nn.functional.cross_entropy(_network.call(x), y);
                    _optimizer.zero_grad();
                    loss.backward();
                    if (_settings.ClippingNorm is double maxNorm)
                        nn.utils.clip_grad_norm_(_parameters, maxNorm);
                    _optimizer.step();
                    // Reading the loss every batch is what any loop that reports or checks its loss does (the library does too).
                    lossSum += loss.item<float>() * count;
                }
            }
            clock.Stop();
            _training += clock.Elapsed;
            double seconds = clock.Elapsed.TotalSeconds;
            var epoch = new EpochMeasurement(_epochs.Count + 1, seconds, rows / seconds, lossSum / rows, CpuLoad.OtherCores(load, CpuLoad.Take()));
            _epochs.Add(epoch);
            _output.WriteLine($"  hand     epoch {epoch.Epoch}/{_settings.Epochs}: loss {epoch.Loss:F4}, {epoch.SamplesPerSecond,7:N0} samples/s");
        }

        /// <summary>Evaluates on the test split and returns the run's measurement.</summary>
        public RunMeasurement Finish()
        {
            double accuracy = TestAccuracy();
            var wall = _setup + _training;
            _output.WriteLine($"  hand: setup and training {wall.TotalSeconds:F2} s, test accuracy {accuracy:P2}");
            return new RunMeasurement(RunKind.HandWritten, _epochs.ToList(), wall, accuracy);
        }

        private double TestAccuracy()
        {
            _network.eval();
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var x = TensorConversion.Features(_test);
            if (_mean is not null)
                x = (x - _mean) * _inverseStd!;
            var predicted = _network.call(x).argmax(1);
            return predicted.eq(TensorConversion.Labels(_test)).sum().item<long>() / (double)_test.Count;
        }

        /// <summary>Per-pixel mean and 1/std (population std; 1 where the std is 0), as the library computes them.</summary>
        private static (Tensor Mean, Tensor InverseStd) Standardization(Tensor features)
        {
            using var scope = torch.NewDisposeScope();
            var x = features.to(ScalarType.Float64);
            var mean = x.mean(new long[] { 0 });
            var std = x.std(0, unbiased: false);
            var inverse = torch.where(std > 1e-12, std.reciprocal(), torch.ones_like(std));
            return (mean.to(ScalarType.Float32).MoveToOuterDisposeScope(), inverse.to(ScalarType.Float32).MoveToOuterDisposeScope());
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _network.Dispose();
            _shuffling.Dispose();
            _features.Dispose();
            _labels.Dispose();
            _mean?.Dispose();
            _inverseStd?.Dispose();
        }
    }
}
