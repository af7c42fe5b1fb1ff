using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.LightGbm;
using MLExtensions.Core;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>Whole sweeps on the small wine and breast-cancer sets: pruning really stops training, journals resume, cancellation, LightGbm subsamples, reports.</summary>
public class SweepIntegrationTests
{
    /// <summary>Counts the epochs a network really trained (an oracle independent of the sweep's own bookkeeping).</summary>
    private sealed class EpochCounter : ITrainingCallback
    {
        public int Epochs;

        public void OnEpochEnd(TrainingRun run, TrainingControl control) => Epochs++;
    }

    private static readonly SearchSpace MlpSpace = new SearchSpace()
        .Add("lr", SearchRange.LogUniform(1e-5, 3e-1))
        .Add("width", SearchRange.Choice(4, 16, 32));

    private static IEstimator<ITransformer> Mlp(MLContext ml, SweepParameters p, int epochs = 9, ITrainingCallback? callback = null)
    {
        var options = new NeuralNetworkOptions
        {
            HiddenLayers = new[] { p.Get<int>("width") },
            Epochs = epochs,
            Dropout = 0,
            ValidationFraction = 0.25,
            Seed = 5,
            Optimizer = { LearningRate = p.Get<double>("lr") },
        };
        if (callback is not null)
            options.Callbacks.Add(callback);
        return ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.NeuralNetwork(options));
    }

    [Fact]
    public void PrunedTrialsStopTrainingAtTheirRung()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        var counters = new List<EpochCounter>();
        var progress = new List<SweepProgress>();
        var result = ml.Sweep(MlpSpace, p =>
        {
            var counter = new EpochCounter();
            counters.Add(counter);
            return Mlp(ml, p, callback: counter);
        }, new SweepOptions { MaxTrials = 8, Tuner = SweepTuner.Random, Pruner = SweepPruner.Asha, Seed = 3, RefitBestModel = false, Progress = new SynchronousProgress<SweepProgress>(progress.Add) }).Run(data);

        Assert.Equal(8, result.Trials.Count);
        Assert.Contains(result.Trials, t => t.Status == TrialStatus.Pruned);
        Assert.Contains(result.Trials, t => t.Status == TrialStatus.Completed);
        for (int i = 0; i < result.Trials.Count; i++)
        {
            var trial = result.Trials[i];
            Assert.Equal(SweepResource.Epochs, trial.Resource);
            Assert.Equal("MicroAccuracy", trial.IntermediateMetricName);
            Assert.Equal(counters[i].Epochs, trial.IntermediateMetrics.Count);
            Assert.Equal(counters[i].Epochs, trial.ResourceUsed);
            if (trial.Status == TrialStatus.Pruned)
            {
                Assert.Contains(counters[i].Epochs, new[] { 1, 3 }); // ASHA rungs below 9 epochs
                Assert.True(double.IsNaN(trial.Metric));
            }
            else
            {
                Assert.Equal(9, counters[i].Epochs);
                Assert.InRange(trial.Metric, 0, 1);
            }
        }
        // Progress: one start and one end per trial, one intermediate value per epoch.
        Assert.Equal(8, progress.Count(p => p.Kind == SweepProgressKind.TrialStarted));
        Assert.Equal(8, progress.Count(p => p.Kind == SweepProgressKind.TrialFinished));
        Assert.Equal(counters.Sum(c => c.Epochs), progress.Count(p => p.Kind == SweepProgressKind.IntermediateValue));
        // The best model (kept from its trial) scores like the best trial on its data.
        Assert.Equal(result.Trials.Where(t => t.Status == TrialStatus.Completed).Max(t => t.Metric), result.BestMetric);
        Assert.NotNull(result.BestModel.Transform(data).Schema.GetColumnOrNull("PredictedLabel"));
    }

    [Fact]
    public void ResumingAnInterruptedSweepFromItsJournalGivesTheUninterruptedResult()
    {
        using var folder = new TempDirectory();
        SweepOptions Options(string journal, IProgress<SweepProgress>? progress = null) =>
            new() { MaxTrials = 6, Tuner = SweepTuner.Tpe, TpeStartupTrials = 3, Pruner = SweepPruner.Asha, Seed = 9, JournalPath = journal, Progress = progress };

        var ml = new MLContext(1);
        var expected = ml.Sweep(MlpSpace, p => Mlp(ml, p, epochs: 4), Options(folder.File("full.jsonl"))).Run(TabularData.LoadWine(ml));

        // Cancel through the MLContext as trial 3 starts (its first batch check throws; within-a-batch cancellation is
        // TrainerContractTests' subject).
        var interrupted = new MLContext(1);
        string journal = folder.File("interrupted.jsonl");
        var cancelling = new SynchronousProgress<SweepProgress>(p =>
        {
            if (p.Kind == SweepProgressKind.TrialStarted && p.Trial.Index == 3)
                MLContextCancellation.Cancel(interrupted);
        });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            interrupted.Sweep(MlpSpace, p => Mlp(interrupted, p, epochs: 4), Options(journal, cancelling)).Run(TabularData.LoadWine(interrupted)));
        Assert.Equal(1 + 3, File.ReadAllLines(journal).Length); // header + trials 0-2
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));

        var again = new MLContext(1);
        var resumed = again.Sweep(MlpSpace, p => Mlp(again, p, epochs: 4), Options(journal)).Run(TabularData.LoadWine(again));

        Assert.Equal(expected.Trials.Count, resumed.Trials.Count);
        for (int i = 0; i < expected.Trials.Count; i++)
        {
            Assert.Equal(expected.Trials[i].Parameters.ToString(), resumed.Trials[i].Parameters.ToString());
            Assert.Equal(expected.Trials[i].Status, resumed.Trials[i].Status);
            Assert.Equal(expected.Trials[i].Metric, resumed.Trials[i].Metric);
            Assert.Equal(expected.Trials[i].IntermediateMetrics, resumed.Trials[i].IntermediateMetrics);
        }
        Assert.Equal(expected.BestMetric, resumed.BestMetric);
        Assert.Equal(expected.BestParameters.ToString(), resumed.BestParameters.ToString());
    }

    [Fact]
    public void LightGbmPipelineIsSweptOnRowSubsamples()
    {
        var ml = new MLContext(1);
        var data = LoadBinaryBreastCancer(ml);
        var space = new SearchSpace()
            .Add("leaves", SearchRange.Integer(2, 32))
            .Add("lr", SearchRange.LogUniform(0.01, 0.5))
            .Add("iterations", SearchRange.Integer(5, 100));
        var progress = new List<SweepProgress>();
        var result = ml.Sweep(space, p => ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
        {
            NumberOfLeaves = p.Get<int>("leaves"),
            LearningRate = p.Get<double>("lr"),
            NumberOfIterations = p.Get<int>("iterations"),
            MinimumExampleCountPerLeaf = 5,
            Seed = 1,
        }), new SweepOptions { Task = SweepTask.BinaryClassification, Metric = SweepMetric.AreaUnderRocCurve, MaxTrials = 8, Seed = 4, Progress = new SynchronousProgress<SweepProgress>(progress.Add) })
            .Run(data);

        Assert.Equal(8, result.Trials.Count);
        Assert.All(result.Trials, t => Assert.Equal(SweepResource.RowFraction, t.Resource));
        Assert.All(result.Trials, t => Assert.Equal("AreaUnderRocCurve", t.IntermediateMetricName));
        foreach (var t in result.Trials)
        {
            var fractions = new[] { 1.0 / 9, 1.0 / 3, 1.0 }.Take(t.IntermediateMetrics.Count).Sum();
            Assert.Equal(fractions, t.ResourceUsed, 12);
            if (t.Status == TrialStatus.Completed)
            {
                Assert.Equal(3, t.IntermediateMetrics.Count);
                Assert.Equal(t.IntermediateMetrics[^1], t.Metric); // the last subsample is all the rows
            }
            else
            {
                Assert.Equal(TrialStatus.Pruned, t.Status);
                Assert.InRange(t.IntermediateMetrics.Count, 1, 2);
            }
        }
        Assert.Contains(result.Trials, t => t.Status == TrialStatus.Pruned);
        Assert.True(result.BestMetric > 0.95, $"best AUC {result.BestMetric}");
        // The refitted best model scores held-out-free data well too.
        var metrics = ml.BinaryClassification.Evaluate(result.BestModel.Transform(data));
        Assert.True(metrics.AreaUnderRocCurve > 0.95);
    }

    [Fact]
    public void SubsamplesHaveTheirFractionOfTheRowsAndAreNested()
    {
        // The sweep's subsamples are ML.NET train/test splits with one seed; check the sizes and the nesting it relies on.
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 900).Select(i => new IdRow { Id = i }).ToList());
        float[] Ids(double fraction) => ml.Data.CreateEnumerable<IdRow>(ml.Data.TrainTestSplit(data, 1 - fraction, seed: 77).TrainSet, false).Select(r => r.Id).ToArray();
        var ninth = Ids(1.0 / 9);
        var third = Ids(1.0 / 3);
        Assert.InRange(ninth.Length, 100 - 30, 100 + 30);
        Assert.InRange(third.Length, 300 - 45, 300 + 45);
        Assert.Empty(ninth.Except(third));
    }

    private sealed class IdRow
    {
        public float Id { get; set; }
    }

    [Fact]
    public void CrossValidationWatchesTheFirstFoldAndAveragesAllFolds()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        var counters = new List<EpochCounter>();
        var result = ml.Sweep(MlpSpace, p =>
        {
            var counter = new EpochCounter();
            counters.Add(counter);
            return Mlp(ml, p, epochs: 3, callback: counter);
        }, new SweepOptions { MaxTrials = 2, CrossValidationFolds = 3, Pruner = SweepPruner.None, Tuner = SweepTuner.Random, RefitBestModel = false }).Run(data);

        // One factory call per trial (plus none for the kept best model); three fits per trial.
        Assert.Equal(2, counters.Count);
        Assert.All(counters, c => Assert.Equal(9, c.Epochs));
        Assert.All(result.Trials, t => Assert.Equal(9, t.ResourceUsed));
        Assert.All(result.Trials, t => Assert.Equal(3, t.IntermediateMetrics.Count)); // first fold only
        // The metric is the mean over the folds: ML.NET's own CrossValidate on the same folds gives the same number.
        foreach (var t in result.Trials)
        {
            var folds = ml.MulticlassClassification.CrossValidate(data, Mlp(ml, t.Parameters, epochs: 3), numberOfFolds: 3, seed: Seeds.Derive(0, HyperparameterSweep.SplitPurpose));
            Assert.Equal(folds.Average(f => f.Metrics.MicroAccuracy), t.Metric, 12);
        }
    }

    private sealed class FailAtEpoch(int epoch) : ITrainingCallback
    {
        public void OnEpochEnd(TrainingRun run, TrainingControl control)
        {
            if (run.State.EpochsCompleted == epoch)
                throw new InvalidOperationException($"diverged in epoch {epoch}");
        }
    }

    [Fact]
    public void ATrialThatFailsDuringTrainingKeepsTheEpochsItSpent()
    {
        var ml = new MLContext(1);
        var result = ml.Sweep(MlpSpace, p => Mlp(ml, p, epochs: 3, callback: p.Get<int>("width") == 4 ? new FailAtEpoch(2) : null),
            new SweepOptions { MaxTrials = 6, Pruner = SweepPruner.None, Tuner = SweepTuner.Random, Seed = 1 }).Run(TabularData.LoadWine(ml));

        var failed = result.Trials.Where(t => t.Parameters.Get<int>("width") == 4).ToList();
        Assert.NotEmpty(failed);
        Assert.All(failed, t =>
        {
            Assert.Equal(TrialStatus.Failed, t.Status);
            Assert.Equal("InvalidOperationException: diverged in epoch 2", t.Error);
            Assert.Equal(2, t.ResourceUsed);
        });
    }

    [Fact]
    public void ResourceBudgetStopsStartingTrialsOnceTheEpochsAreSpent()
    {
        var ml = new MLContext(1);
        var result = ml.Sweep(MlpSpace, p => Mlp(ml, p, epochs: 3), new SweepOptions { MaxTrials = 0, ResourceBudget = 10, Pruner = SweepPruner.None, Tuner = SweepTuner.Random })
            .Run(TabularData.LoadWine(ml));
        // 3 + 3 + 3 = 9 < 10, so a fourth trial starts; after it 12 ≥ 10.
        Assert.Equal(4, result.Trials.Count);
        Assert.Equal(12, result.Trials.Sum(t => t.ResourceUsed));
    }

    [Fact]
    public void ReportWritesTablesAndCharts()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        var result = ml.Sweep(MlpSpace, p => Mlp(ml, p, epochs: 3), new SweepOptions { MaxTrials = 5, Tuner = SweepTuner.Random, Seed = 2 }).Run(data);
        using var folder = new TempDirectory();
        var files = result.SaveReport(folder.Path);

        Assert.Equal(new[] { "trials.csv", "trials.md", "metric_per_trial.png", "learning_curves.png", "parameter_importance.png" }, files.Select(Path.GetFileName));
        var csv = File.ReadAllLines(folder.File("trials.csv"));
        Assert.Equal("Trial,Status,MicroAccuracy,Steps,Resource,Seconds,lr,width,Error", csv[0]);
        Assert.Equal(6, csv.Length);
        Assert.StartsWith("Best MicroAccuracy: ", File.ReadAllText(folder.File("trials.md")));
        foreach (var png in files.Where(f => f.EndsWith(".png")))
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, File.ReadAllBytes(png).Take(4));
        var importance = result.ParameterImportance();
        Assert.Equal(new[] { "lr", "width" }, importance.Keys);
        Assert.True(importance.Values.Sum() is 0 or (> 0.999 and < 1.001));
    }

    [Fact]
    public void ParameterImportanceFindsTheParameterThatMatters()
    {
        // Scripted trials: the metric follows "a" only; "b" is noise-free irrelevant.
        var space = new SearchSpace { { "a", SearchRange.Uniform(0, 1) }, { "b", SearchRange.Choice("x", "y") } };
        var trials = Enumerable.Range(0, 12).Select(i => new SweepTrial(i, new SweepParameters(space, new[] { i / 11.0, i % 2 }))
            { Status = TrialStatus.Completed, Metric = i / 11.0 }).ToList();
        var result = new SweepResult(null!, trials[^1], trials, new SweepOptions());
        var importance = result.ParameterImportance();
        Assert.True(importance["a"] > 0.9, $"a: {importance["a"]}");
        Assert.True(importance["b"] < 0.1, $"b: {importance["b"]}");
    }

    internal static IDataView LoadBinaryBreastCancer(MLContext ml)
    {
        var loader = ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Separators = new[] { ',' },
            HasHeader = true,
            Columns = new[]
            {
                new TextLoader.Column("Features", DataKind.Single, 0, 29),
                new TextLoader.Column("Label", DataKind.Boolean, 30),
            },
        });
        return ml.Data.Cache(loader.Load(TabularData.Path("breast_cancer.csv")));
    }
}
