using Microsoft.ML;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>Every bad input the issue lists, with the exception type and the message.</summary>
public class SweepBadInputTests
{
    private static readonly SearchSpace OneParameter = new SearchSpace().Add("lr", SearchRange.LogUniform(1e-3, 1e-1));

    private static IEstimator<ITransformer> Mlp(MLContext ml, SweepParameters p) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 8 },
            Epochs = 2,
            Seed = 1,
            Optimizer = { LearningRate = p.Get<double>("lr") },
        }));

    [Fact]
    public void EmptySearchSpaceIsRejected()
    {
        var ml = new MLContext(1);
        var e = Assert.Throws<ArgumentException>(() => ml.Sweep(new SearchSpace(), p => Mlp(ml, p), new SweepOptions()));
        Assert.StartsWith("The search space is empty; add at least one parameter with SearchSpace.Add.", e.Message);
    }

    [Fact]
    public void RangesWithMinNotBelowMaxAreRejected()
    {
        Assert.StartsWith("SearchRange.Uniform needs min < max; found min = 2, max = 1.", Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.Uniform(2, 1)).Message);
        Assert.StartsWith("SearchRange.Integer needs min < max; found min = 3, max = 3.", Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.Integer(3, 3)).Message);
        Assert.StartsWith("SearchRange.LogUniform needs min < max; found min = 0.1, max = 0.01.", Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.LogUniform(0.1, 0.01)).Message);
        Assert.StartsWith($"SearchRange.Uniform needs a finite max; found {double.PositiveInfinity.ToString(System.Globalization.CultureInfo.InvariantCulture)}.", Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.Uniform(0, double.PositiveInfinity)).Message);
    }

    [Fact]
    public void LogUniformNeedsAPositiveMin()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.LogUniform(0, 1));
        Assert.Equal("min", e.ParamName);
        Assert.StartsWith("SearchRange.LogUniform needs min > 0 (its logarithm is sampled); found min = 0.", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SearchRange.LogUniform(-1, 1));
    }

    [Fact]
    public void ChoiceNeedsValues()
    {
        Assert.StartsWith("SearchRange.Choice needs at least one value; found none.", Assert.Throws<ArgumentException>(() => SearchRange.Choice()).Message);
        Assert.StartsWith("SearchRange.Choice values must not be null; value 1 is null.", Assert.Throws<ArgumentException>(() => SearchRange.Choice("a", null!)).Message);
    }

    [Fact]
    public void DuplicateParameterNamesAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new SearchSpace().Add("lr", SearchRange.Uniform(0, 1)).Add("lr", SearchRange.Uniform(0, 2)));
        Assert.StartsWith("The search space already has a parameter 'lr'.", e.Message);
    }

    [Fact]
    public void MetricOfAnotherTaskIsRejected()
    {
        var ml = new MLContext(1);
        var options = new SweepOptions { Task = SweepTask.Regression, Metric = SweepMetric.Accuracy };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(OneParameter, p => Mlp(ml, p), options));
        Assert.Equal("Metric", e.ParamName);
        Assert.StartsWith("Metric Accuracy does not belong to Task Regression; use one of RSquared, MeanAbsoluteError, RootMeanSquaredError.", e.Message);

        options = new SweepOptions { Task = SweepTask.BinaryClassification, Metric = SweepMetric.MicroAccuracy };
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(OneParameter, p => Mlp(ml, p), options));
    }

    [Fact]
    public void NoTrialLimitAndNoTimeBudgetIsRejected()
    {
        var ml = new MLContext(1);
        foreach (int max in new[] { 0, -3 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { MaxTrials = max }));
            Assert.Equal("MaxTrials", e.ParamName);
            Assert.StartsWith($"MaxTrials must be > 0 when neither TimeBudget nor ResourceBudget is set; found {max}.", e.Message);
        }
        // With a time or resource budget, no trial limit is fine.
        ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { MaxTrials = 0, TimeBudget = TimeSpan.FromSeconds(1) });
        ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { MaxTrials = 0, ResourceBudget = 10 });
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { ResourceBudget = 0 }));
        Assert.StartsWith("ResourceBudget must be a finite number > 0; found 0.", bad.Message);
    }

    [Fact]
    public void ReadingAParameterWrongIsExplained()
    {
        var space = new SearchSpace { { "n", SearchRange.Integer(1, 3) }, { "kind", SearchRange.Choice("a", "b") } };
        var p = new SweepParameters(space, new[] { 2.0, 1.0 });
        Assert.Equal(2, p.Get<int>("n"));
        Assert.Equal(2L, p.Get<long>("n"));
        Assert.Equal(2.0, p.Get<double>("n"));
        Assert.Equal("b", p.Get<string>("kind"));
        Assert.StartsWith("The sweep has no parameter 'm'. Parameters: n, kind.", Assert.Throws<KeyNotFoundException>(() => p.Get<int>("m")).Message);
        Assert.StartsWith("Sweep parameter 'kind' is a String (b); it cannot be read as Int32.", Assert.Throws<InvalidCastException>(() => p.Get<int>("kind")).Message);
    }

    [Fact]
    public void AFactoryThatThrowsFailsItsTrialAndTheSweepGoesOn()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        var space = new SearchSpace { { "lr", SearchRange.LogUniform(1e-3, 1e-1) }, { "broken", SearchRange.Choice(false, true) } };
        var result = ml.Sweep(space, p => p.Get<bool>("broken") ? throw new InvalidOperationException("no pipeline for this one") : Mlp(ml, p),
            new SweepOptions { Tuner = SweepTuner.Grid, GridPoints = 2, Pruner = SweepPruner.None, MaxTrials = 4 }).Run(data);

        Assert.Equal(4, result.Trials.Count);
        var failed = result.Trials.Where(t => t.Parameters.Get<bool>("broken")).ToList();
        Assert.Equal(2, failed.Count);
        Assert.All(failed, t =>
        {
            Assert.Equal(TrialStatus.Failed, t.Status);
            Assert.Equal("InvalidOperationException: no pipeline for this one", t.Error);
            Assert.True(double.IsNaN(t.Metric));
        });
        Assert.All(result.Trials.Except(failed), t => Assert.Equal(TrialStatus.Completed, t.Status));
        Assert.False(result.BestParameters.Get<bool>("broken"));
    }

    [Fact]
    public void AllTrialsFailingEndsWithTheFirstErrors()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        int calls = 0;
        var sweep = ml.Sweep(OneParameter, p => throw new ArgumentException($"bad pipeline {calls++}"), new SweepOptions { MaxTrials = 4, Tuner = SweepTuner.Random });
        var e = Assert.Throws<InvalidOperationException>(() => sweep.Run(data));

        Assert.StartsWith("All 4 trials failed. First errors: trial 0 (lr=", e.Message);
        Assert.Contains("): ArgumentException: bad pipeline 0 | trial 1 (lr=", e.Message);
        Assert.Contains("ArgumentException: bad pipeline 2", e.Message);
        Assert.DoesNotContain("bad pipeline 3", e.Message);
        var inner = Assert.IsType<AggregateException>(e.InnerException);
        Assert.Equal(new[] { "bad pipeline 0", "bad pipeline 1", "bad pipeline 2" }, inner.InnerExceptions.Select(x => x.Message));
    }

    [Fact]
    public void AJournalOfAnotherSweepIsNotResumed()
    {
        var ml = new MLContext(1);
        var data = TabularData.LoadWine(ml);
        using var folder = new TempDirectory();
        string journal = folder.File("sweep.jsonl");
        ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { MaxTrials = 1, JournalPath = journal, Seed = 1 }).Run(data);

        var e = Assert.Throws<InvalidOperationException>(() =>
            ml.Sweep(OneParameter, p => Mlp(ml, p), new SweepOptions { MaxTrials = 2, JournalPath = journal, Seed = 2 }).Run(data));
        Assert.Contains("belongs to a different sweep: it recorded seed 1, space [lr: LogUniform(0.001, 0.1)]", e.Message);
        Assert.Contains("this sweep is seed 2,", e.Message);
    }
}
