using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;
using ShellProgressBar;

namespace MLExtensions.Samples;

/// <summary>
/// Tunes the wine classifier's neural network with a hyperparameter sweep (TPE + ASHA) on the validation log-loss (wine
/// is easy: many settings reach 100 % validation accuracy, so accuracy could not tell them apart): a progress bar with one tick
/// per trial, the trials table, the best parameters, the test accuracy of the refitted best model and the report PNGs
/// (metric per trial, learning curves, parameter importance). The sweep's journal makes a second run resume.
/// Options: --data &lt;csv with F0..F12,Label&gt;  --output &lt;folder&gt; (default ./sample-output)  --trials N (default 24).
/// </summary>
internal static class SweepSample
{
    private sealed class Wine
    {
        [LoadColumn(0, 12), VectorType(13)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [LoadColumn(13)]
        public float Label { get; set; }
    }

    public static int Run(string[] args)
    {
        string output = Path.GetFullPath(TabularSample.Option(args, "--output") ?? "sample-output");
        int trials = int.Parse(TabularSample.Option(args, "--trials") ?? "24");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);
        string csv = TabularSample.Option(args, "--data") ?? TabularSample.ExtractEmbedded("wine.csv", output);
        var data = ml.Data.Cache(ml.Data.LoadFromTextFile<Wine>(csv, separatorChar: ',', hasHeader: true));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 1);

        // 1. What to tune, and how each trial's pipeline is built from its parameters.
        var space = new SearchSpace()
            .Add("LearningRate", SearchRange.LogUniform(1e-4, 1e-1))
            .Add("Width", SearchRange.Choice(8, 16, 32, 64))
            .Add("Layers", SearchRange.Integer(1, 3))
            .Add("Dropout", SearchRange.Uniform(0, 0.5))
            .Add("WeightDecay", SearchRange.LogUniform(1e-6, 1e-1));
        IEstimator<ITransformer> Pipeline(SweepParameters p) => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
            {
                HiddenLayers = Enumerable.Repeat(p.Get<int>("Width"), p.Get<int>("Layers")).ToArray(),
                Dropout = p.Get<double>("Dropout"),
                Epochs = 27, // ASHA decides after epochs 1, 3 and 9
                Seed = 1,
                Optimizer = { LearningRate = p.Get<double>("LearningRate"), WeightDecay = p.Get<double>("WeightDecay") },
            }));

        // 2. Run it with a progress bar; the journal lets an interrupted run resume where it stopped.
        string journal = Path.Combine(output, "sweep-journal.jsonl");
        SweepResult result;
        using (var bar = new ProgressBar(trials, "Sweeping the wine classifier (TPE + ASHA)", new ProgressBarOptions { ProgressCharacter = '─', CollapseWhenFinished = false }))
        {
            var options = new SweepOptions
            {
                Task = SweepTask.MulticlassClassification,
                Metric = SweepMetric.LogLoss, // intermediate values: the loop's validation loss, which is this log-loss
                Tuner = SweepTuner.Tpe,
                Pruner = SweepPruner.Asha,
                MaxTrials = trials,
                Seed = 1,
                JournalPath = journal,
                Progress = new BarProgress(bar),
            };
            result = ml.Sweep(space, Pipeline, options).Run(split.TrainSet);
        }

        // 3. What it found.
        Console.WriteLine($"\n{result.Trials.Count} trials: {result.Trials.Count(t => t.Status == TrialStatus.Completed)} completed, " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Pruned)} pruned, {result.Trials.Sum(t => t.ResourceUsed):0} epochs in all " +
            $"(without pruning: {result.Trials.Count * 27}). Journal: {journal}");
        foreach (var t in result.Trials)
            Console.WriteLine($"  {t.Index,2} {t.Status,-9} {t.IntermediateMetrics.Count,2} epochs  validation log-loss {(double.IsNaN(t.Metric) ? "  -  " : t.Metric.ToString("F3")),5}  {t.Parameters}");
        Console.WriteLine($"\nBest: validation log-loss {result.BestMetric:F3} with {result.BestParameters}");
        var test = ml.MulticlassClassification.Evaluate(result.BestModel.Transform(split.TestSet));
        Console.WriteLine($"Refitted on all training rows: test accuracy {test.MicroAccuracy:P1}, test log-loss {test.LogLoss:F3}");
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
            string best = double.IsNaN(p.BestMetric) ? "" : $", best log-loss {p.BestMetric:F3}";
            switch (p.Kind)
            {
                case SweepProgressKind.IntermediateValue:
                    bar.Message = $"trial {t.Index}: epoch {t.IntermediateMetrics.Count}, validation {t.IntermediateMetricName} {t.IntermediateMetrics[^1]:F3}{best}";
                    break;
                case SweepProgressKind.TrialFinished:
                    bar.Tick(p.TrialsFinished, $"trial {t.Index} {t.Status.ToString().ToLowerInvariant()} after {t.IntermediateMetrics.Count} epochs{best}");
                    break;
            }
        }
    }
}
