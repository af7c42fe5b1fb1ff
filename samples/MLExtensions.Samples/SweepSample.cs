using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;
using ShellProgressBar;

namespace MLExtensions.Samples;

/// <summary>
/// Tunes a Fashion-MNIST neural network (the sample's 2,000-image subset) with a hyperparameter sweep (TPE + ASHA): a
/// progress bar with one tick per trial, the trials table, the best parameters, the test accuracy of the refitted best
/// model and the report PNGs (metric per trial, learning curves, parameter importance). The sweep's journal makes a
/// second run resume (delete it to start over).
/// Options: --data &lt;Fashion-MNIST folder&gt;  --output &lt;folder&gt; (default ./sample-output)  --trials N (default 24).
/// </summary>
internal static class SweepSample
{
    private const int Epochs = 9; // ASHA decides after epochs 1 and 3

    public static int Run(string[] args)
    {
        string output = Path.GetFullPath(TabularSample.Option(args, "--output") ?? "sample-output");
        int trials = int.Parse(TabularSample.Option(args, "--trials") ?? "24");
        string folder = TabularSample.Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(VisionSample.Load(folder, "train"));
        var test = ml.Data.LoadFromEnumerable(VisionSample.Load(folder, "t10k"));
        Console.WriteLine($"Fashion-MNIST from {folder}: {train.GetRowCount()} training and {test.GetRowCount()} test images.\n");

        // 1. What to tune, and how each trial's pipeline is built from its parameters.
        var space = new SearchSpace()
            .Add("LearningRate", SearchRange.LogUniform(1e-4, 3e-2))
            .Add("Width", SearchRange.Choice(32, 64, 128))
            .Add("Dropout", SearchRange.Uniform(0, 0.5))
            .Add("WeightDecay", SearchRange.LogUniform(1e-6, 1e-1))
            .Add("BatchSize", SearchRange.Choice(32, 64, 128));
        IEstimator<ITransformer> Pipeline(SweepParameters p) => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.Conversion.ConvertType("Features", nameof(VisionSample.Item.Pixels), DataKind.Single))
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
            {
                HiddenLayers = new[] { p.Get<int>("Width") },
                Dropout = p.Get<double>("Dropout"),
                BatchSize = p.Get<int>("BatchSize"),
                Epochs = Epochs,
                Seed = 1,
                Optimizer = { LearningRate = p.Get<double>("LearningRate"), WeightDecay = p.Get<double>("WeightDecay") },
            }));

        // 2. Run it with a progress bar; the journal lets an interrupted run resume where it stopped.
        string journal = Path.Combine(output, "sweep-journal.jsonl");
        SweepResult result;
        TimeSpan sweepTime;
        using (var bar = new ProgressBar(trials, "Sweeping the Fashion-MNIST network (TPE + ASHA)", new ProgressBarOptions { ProgressCharacter = '─', CollapseWhenFinished = false }))
        {
            var options = new SweepOptions
            {
                Task = SweepTask.MulticlassClassification,
                Metric = SweepMetric.MicroAccuracy, // per epoch: the training loop's validation accuracy
                Tuner = SweepTuner.Tpe,
                Pruner = SweepPruner.Asha,
                MaxTrials = trials,
                Seed = 1,
                JournalPath = journal,
                Progress = new BarProgress(bar),
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            result = ml.Sweep(space, Pipeline, options).Run(train);
            sweepTime = clock.Elapsed;
        }

        // 3. What it found.
        Console.WriteLine($"\n{result.Trials.Count} trials: {result.Trials.Count(t => t.Status == TrialStatus.Completed)} completed, " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Pruned)} pruned, {result.Trials.Sum(t => t.ResourceUsed):0} epochs in all " +
            $"(without pruning: {result.Trials.Count * Epochs}) in {sweepTime.TotalMinutes:F1} min. Journal: {journal}");
        foreach (var t in result.Trials)
            Console.WriteLine($"  {t.Index,2} {t.Status,-9} {t.IntermediateMetrics.Count,2} epochs  validation {(double.IsNaN(t.Metric) ? "  -  " : t.Metric.ToString("P1")),6}  {t.Parameters}");
        Console.WriteLine($"\nBest: validation accuracy {result.BestMetric:P1} with {result.BestParameters}");
        var metrics = ml.MulticlassClassification.Evaluate(result.BestModel.Transform(test));
        Console.WriteLine($"Refitted on all training images: test accuracy {metrics.MicroAccuracy:P1}");
        Console.WriteLine("Parameter importance: " + string.Join(", ", result.ParameterImportance().OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value:P0}")));

        foreach (string file in result.SaveReport(Path.Combine(output, "sweep-report")))
            Console.WriteLine($"Wrote {file}");
        return 0;
    }

    /// <summary>One tick per finished trial; the message shows the running trial's latest validation value.</summary>
    private sealed class BarProgress(ProgressBar bar) : IProgress<SweepProgress>
    {
        public void Report(SweepProgress p)
        {
            var t = p.Trial;
            string best = double.IsNaN(p.BestMetric) ? "" : $", best {p.BestMetric:P1}";
            switch (p.Kind)
            {
                case SweepProgressKind.IntermediateValue:
                    bar.Message = $"trial {t.Index}: epoch {t.IntermediateMetrics.Count}, validation {t.IntermediateMetricName} {t.IntermediateMetrics[^1]:P1}{best}";
                    break;
                case SweepProgressKind.TrialFinished:
                    bar.Tick(p.TrialsFinished, $"trial {t.Index} {t.Status.ToString().ToLowerInvariant()} after {t.IntermediateMetrics.Count} epochs{best}");
                    break;
            }
        }
    }
}
