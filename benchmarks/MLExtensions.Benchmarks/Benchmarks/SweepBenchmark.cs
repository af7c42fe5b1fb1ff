using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Hyperparameter sweeps at equal budget. For each model: (1) a large random search run to completion (no pruning) as
/// ground truth, (2) random search and (3) TPE + ASHA, both limited to one third of the ground truth's resource
/// (epochs for the MLP on a 10,000-image Fashion-MNIST subset; row fractions for LightGbm on the 30-feature
/// breast-cancer data). The best trial's own model is scored on the test set, and so are the same parameters refitted on
/// all training rows.
/// </summary>
/// <remarks>
/// Targets (issue #21): TPE + ASHA within 0.5 points of the ground truth's best test score with at most a third of its
/// resource, and ahead of random search at the same budget. (2) and (3) use another seed than (1), so they do not
/// replay the ground truth's first trials.
/// </remarks>
internal sealed class SweepBenchmark : IBenchmark
{
    /// <inheritdoc />
    public string Name => "sweep";

    /// <inheritdoc />
    public string Description => "Hyperparameter sweeps: ground-truth random search vs. random and TPE + ASHA at a third of its epochs (MLP on Fashion-MNIST, LightGbm on breast cancer).";

    /// <inheritdoc />
    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("part", "mlp|lightgbm|all", "Which sweeps to run. Default all."),
        new("data", "folder", "Fashion-MNIST folder (the four *-ubyte.gz files). Default: ../shared/data/fashion-mnist next to the repository, else samples/data/fashion-mnist."),
        new("images", "N", "Training images used (the first N). Default 10000."),
        new("trials", "N", "Trials of the MLP ground truth (each trains --epochs epochs). Default 60."),
        new("threads", "N", "libtorch intra-op threads. Default 1: on a shared machine one thread loses least to neighbours (libtorch waits for its slowest thread)."),
        new("epochs", "N", "Epochs per MLP trial. Default 9 (ASHA rungs at 1 and 3)."),
        new("gbm-trials", "N", "Trials of the LightGbm ground truth. Default 60."),
        new("seed", "N", "Seed of the ground truth; the budgeted sweeps use seed + 1. Default 1."),
    };

    private enum Part
    {
        All,
        Mlp,
        LightGbm,
    }

    /// <summary>One sweep's outcome. TestScore is the best trial's own model (what the sweep validated); RefitScore the same parameters refitted on all training rows.</summary>
    private sealed record SweepRun(string Name, SweepResult Result, double TestScore, double RefitScore, double? TestAccuracy, TimeSpan Wall, double? OtherCores);

    /// <inheritdoc />
    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        var part = arguments.Enum("part", Part.All);
        int seed = arguments.Int("seed", 1, minimum: 0);
        output.WriteLine("Benchmark sweep: ground truth (random search to completion) vs. random search and TPE + ASHA at a third of its resource");
        if (part is Part.All or Part.Mlp)
            RunMlp(arguments, seed, output);
        if (part is Part.All or Part.LightGbm)
            RunLightGbm(arguments, seed, output);
        return 0;
    }

    private static void RunMlp(BenchmarkArguments arguments, int seed, TextWriter output)
    {
        int images = arguments.Int("images", 10_000);
        int trials = arguments.Int("trials", 60);
        int epochs = arguments.Int("epochs", 9);
        int threads = arguments.Int("threads", 1);
        var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
        var ml = new MLContext(seed);
        var train = ml.Data.LoadFromEnumerable(ImageRow.From(data.Train).Take(images).ToList());
        var test = ml.Data.LoadFromEnumerable(ImageRow.From(data.Test).ToList());
        var space = new SearchSpace()
            .Add("LearningRate", SearchRange.LogUniform(1e-4, 3e-2))
            .Add("Width", SearchRange.Choice(32, 64, 128, 256))
            .Add("Dropout", SearchRange.Uniform(0, 0.5))
            .Add("WeightDecay", SearchRange.LogUniform(1e-6, 1e-1))
            .Add("BatchSize", SearchRange.Choice(32, 64, 128, 256));
        IEstimator<ITransformer> Pipeline(SweepParameters p) => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
            {
                HiddenLayers = new[] { p.Get<int>("Width") },
                Dropout = p.Get<double>("Dropout"),
                BatchSize = p.Get<int>("BatchSize"),
                Epochs = epochs,
                FeatureScaling = FeatureScaling.None, // pixels are already in [0, 1]
                Seed = seed,
                NumberOfThreads = threads,
                Optimizer = { LearningRate = p.Get<double>("LearningRate"), WeightDecay = p.Get<double>("WeightDecay") },
            }));
        // A budget stops new trials, so the last trial may overrun it by up to one full trial: leave that room
        // below a third of the ground truth's epochs.
        double budget = trials * epochs / 3.0 - epochs;

        output.WriteLine();
        output.WriteLine($"MLP on Fashion-MNIST: {images} training images ({data.Origin}: {data.Folder}), {data.Test.Count} test images; " +
            $"20 % of the training images score trials; each trial trains ≤ {epochs} epochs on the rest (10 % of them validate per epoch).");
        output.WriteLine($"  Space: {space}");
        var runs = new List<SweepRun>
        {
            Measure("ground truth (random, no pruning)", ml, space, Pipeline, train, test, new SweepOptions { Tuner = SweepTuner.Random, Pruner = SweepPruner.None, MaxTrials = trials, Seed = seed }, output),
            Measure("random search", ml, space, Pipeline, train, test, new SweepOptions { Tuner = SweepTuner.Random, Pruner = SweepPruner.None, MaxTrials = 0, ResourceBudget = budget, Seed = seed + 1 }, output),
            Measure("TPE + ASHA", ml, space, Pipeline, train, test, new SweepOptions { Tuner = SweepTuner.Tpe, Pruner = SweepPruner.Asha, MaxTrials = 0, ResourceBudget = budget, Seed = seed + 1 }, output),
        };
        Report(output, "epochs", "test accuracy", runs);
    }

    private static void RunLightGbm(BenchmarkArguments arguments, int seed, TextWriter output)
    {
        int trials = arguments.Int("gbm-trials", 60);
        var ml = new MLContext(seed);
        string path = Path.Combine(RepositoryPaths.Root(), "tests", "MLExtensions.Tests", "TestData", "Tabular", "breast_cancer.csv");
        var all = ml.Data.Cache(ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Separators = new[] { ',' },
            HasHeader = true,
            Columns = new[] { new TextLoader.Column("Features", DataKind.Single, 0, 29), new TextLoader.Column("Label", DataKind.Boolean, 30) },
        }).Load(path));
        var split = ml.Data.TrainTestSplit(all, 0.3, seed: seed);
        var space = new SearchSpace()
            .Add("Leaves", SearchRange.Integer(2, 64))
            .Add("LearningRate", SearchRange.LogUniform(0.005, 0.5))
            .Add("Iterations", SearchRange.Integer(10, 400))
            .Add("MinRowsPerLeaf", SearchRange.Integer(2, 40))
            .Add("L2", SearchRange.LogUniform(1e-4, 10));
        IEstimator<ITransformer> Pipeline(SweepParameters p) => ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
        {
            NumberOfLeaves = p.Get<int>("Leaves"),
            LearningRate = p.Get<double>("LearningRate"),
            NumberOfIterations = p.Get<int>("Iterations"),
            MinimumExampleCountPerLeaf = p.Get<int>("MinRowsPerLeaf"),
            Booster = new GradientBooster.Options { L2Regularization = p.Get<double>("L2") },
            Seed = seed,
            NumberOfThreads = 1,
        });
        var options = (SweepTuner tuner, SweepPruner pruner, int max, double? budget, int s) => new SweepOptions
        {
            Task = SweepTask.BinaryClassification, Metric = SweepMetric.AreaUnderRocCurve, Tuner = tuner, Pruner = pruner, MaxTrials = max, ResourceBudget = budget, Seed = s,
        };
        double third = trials / 3.0 - HyperparameterSweep.RowFractions.Sum(); // room for the last trial's overrun

        output.WriteLine();
        output.WriteLine($"LightGbm on breast cancer (569 rows, 30 features): 70 % train (20 % of it scores trials), 30 % test; resource = fraction of the training rows (1/9, 1/3, all).");
        output.WriteLine($"  Space: {space}");
        var runs = new List<SweepRun>
        {
            Measure("ground truth (random, no pruning)", ml, space, Pipeline, split.TrainSet, split.TestSet, options(SweepTuner.Random, SweepPruner.None, trials, null, seed), output),
            Measure("random search", ml, space, Pipeline, split.TrainSet, split.TestSet, options(SweepTuner.Random, SweepPruner.None, 0, third, seed + 1), output),
            Measure("TPE + ASHA", ml, space, Pipeline, split.TrainSet, split.TestSet, options(SweepTuner.Tpe, SweepPruner.Asha, 0, third, seed + 1), output),
        };
        Report(output, "row fractions", "test AUC", runs);
    }

    private static SweepRun Measure(string name, MLContext ml, SearchSpace space, Func<SweepParameters, IEstimator<ITransformer>> pipeline,
        IDataView train, IDataView test, SweepOptions options, TextWriter output)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var load = CpuLoad.Take();
        var clock = Stopwatch.StartNew();
        options.Progress = new TrialLog(name, clock);
        options.RefitBestModel = false; // keep the best trial's own model: the one the sweep actually validated
        var result = ml.Sweep(space, pipeline, options).Run(train);
        clock.Stop();
        double? others = CpuLoad.OtherCores(load, CpuLoad.Take());
        var (score, accuracy) = Score(ml, options.Task, result.BestModel, test);
        // The same parameters refitted on all training rows (what SweepOptions.RefitBestModel does by default), to show
        // how much one refit of a network varies.
        var (refit, _) = Score(ml, options.Task, pipeline(result.BestParameters).Fit(train), test);
        output.WriteLine($"  {name}: {result.Trials.Count} trials ({result.Trials.Count(t => t.Status == TrialStatus.Pruned)} pruned, " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Failed)} failed), best validation {result.Metric} {result.BestMetric:F4} with {result.BestParameters}");
        foreach (var failed in result.Trials.Where(t => t.Status == TrialStatus.Failed))
            output.WriteLine($"    failed trial {failed.Index} ({failed.Parameters}): {failed.Error}");
        return new SweepRun(name, result, score, refit, accuracy, clock.Elapsed, others);
    }

    private static (double Score, double? Accuracy) Score(MLContext ml, SweepTask task, ITransformer model, IDataView test)
    {
        var scored = model.Transform(test);
        if (task != SweepTask.BinaryClassification)
            return (ml.MulticlassClassification.Evaluate(scored).MicroAccuracy, null);
        var m = ml.BinaryClassification.Evaluate(scored);
        return (m.AreaUnderRocCurve, m.Accuracy);
    }

    /// <summary>One line per finished trial on standard error, to follow a long run (the report goes to standard output).</summary>
    private sealed class TrialLog(string name, Stopwatch clock) : IProgress<SweepProgress>
    {
        public void Report(SweepProgress p)
        {
            if (p.Kind == SweepProgressKind.TrialFinished)
                Console.Error.WriteLine($"    [{clock.Elapsed.TotalSeconds,5:F0} s] {name} trial {p.Trial.Index}: {p.Trial.Status}, {p.Trial.ResourceUsed:0.##} used, metric {p.Trial.Metric:F4}, best {p.BestMetric:F4}");
        }
    }

    private static void Report(TextWriter output, string resource, string scoreName, List<SweepRun> runs)
    {
        output.WriteLine();
        bool binary = runs[0].TestAccuracy is not null;
        var headers = new List<string> { "Sweep", "Trials", "Pruned", resource, $"share of {resource}", "Best validation", $"Best trial's {scoreName}" };
        if (binary)
            headers.Add("Its test accuracy");
        headers.Add($"Refitted: {scoreName}");
        headers.AddRange(new[] { "Wall time (s)", "Other load (cores)" });
        var table = new TextTable(headers.ToArray());
        double truth = runs[0].Result.Trials.Sum(t => t.ResourceUsed);
        foreach (var run in runs)
        {
            double used = run.Result.Trials.Sum(t => t.ResourceUsed);
            var cells = new List<string>
            {
                run.Name, run.Result.Trials.Count.ToString(), run.Result.Trials.Count(t => t.Status == TrialStatus.Pruned).ToString(),
                used.ToString("0.##"), (used / truth).ToString("P0"), run.Result.BestMetric.ToString("F4"), (binary ? run.TestScore.ToString("F4") : (100 * run.TestScore).ToString("F2") + " %"),
            };
            if (binary)
                cells.Add((100 * run.TestAccuracy!.Value).ToString("F2") + " %");
            cells.Add(binary ? run.RefitScore.ToString("F4") : (100 * run.RefitScore).ToString("F2") + " %");
            cells.Add(run.Wall.TotalSeconds.ToString("F0"));
            cells.Add(run.OtherCores is double c ? c.ToString("F2") : "n/a");
            table.AddRow(cells.ToArray());
        }
        table.Write(output);
        var tpe = runs[2];
        double gap = runs[0].TestScore - tpe.TestScore;
        string unit = binary ? "" : " points";
        double scale = binary ? 1 : 100;
        output.WriteLine($"  TPE + ASHA vs. ground truth: {(scale * gap).ToString(binary ? "F4" : "F2")}{unit} below (target ≤ {(binary ? "0.005" : "0.5 points")}), " +
            $"{tpe.Result.Trials.Sum(t => t.ResourceUsed) / runs[0].Result.Trials.Sum(t => t.ResourceUsed):P0} of its {resource} (target ≤ 33 %); " +
            $"vs. random search at the same budget: {(scale * (tpe.TestScore - runs[1].TestScore)).ToString(binary ? "+0.0000;-0.0000" : "+0.00;-0.00")}{unit}.");
        output.WriteLine($"  Refitted: the same parameters fitted again on all training rows (comparison above: the best trial's own model); refitted gap to ground truth " +
            $"{(scale * (runs[0].RefitScore - tpe.RefitScore)).ToString(binary ? "F4" : "F2")}{unit}, vs. random {(scale * (tpe.RefitScore - runs[1].RefitScore)).ToString(binary ? "+0.0000;-0.0000" : "+0.00;-0.00")}{unit}.");
        output.WriteLine("  Wall time: the sweep alone; other load: the CPU other processes used meanwhile (cores).");
    }
}
