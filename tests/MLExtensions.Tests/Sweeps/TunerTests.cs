using MLExtensions.Sweeps;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>The tuners on synthetic functions (no fitting): TPE against random search, the grid, determinism.</summary>
public class TunerTests
{
    /// <summary>The Branin function (minimum 0.397887 at three points in x ∈ [−5, 10], y ∈ [0, 15]).</summary>
    private static double Branin(double x, double y)
    {
        const double a = 1, b = 5.1 / (4 * Math.PI * Math.PI), c = 5 / Math.PI, r = 6, s = 10, t = 1 / (8 * Math.PI);
        return a * Math.Pow(y - b * x * x + c * x - r, 2) + s * (1 - t) * Math.Cos(x) + s;
    }

    private static readonly SearchSpace BraninSpace = SweepTestDriver.Space(("x", SearchRange.Uniform(-5, 10)), ("y", SearchRange.Uniform(0, 15)));

    /// <summary>Runs <paramref name="trials"/> proposals and returns the lowest value found.</summary>
    private static double BestAfter(ISweepTuner tuner, int trials, Func<SweepParameters, double> f)
    {
        var finished = new List<SweepTrial>();
        for (int i = 0; i < trials; i++)
        {
            var parameters = new SweepParameters(BraninSpace, tuner.Propose(i, finished)!);
            finished.Add(new SweepTrial(i, parameters) { Status = TrialStatus.Completed, Metric = f(parameters) });
        }
        return finished.Min(t => t.Metric);
    }

    [Fact]
    public void TpeFindsLowerBraninValuesThanRandomSearchWithTheSameNumberOfTrials()
    {
        double F(SweepParameters p) => Branin(p.Get<double>("x"), p.Get<double>("y"));
        var seeds = Enumerable.Range(1, 9).ToArray();
        var tpe = seeds.Select(s => BestAfter(new TpeTuner(BraninSpace.Ranges, s, higherIsBetter: false, startupTrials: 10), 50, F)).OrderBy(v => v).ToArray();
        var random = seeds.Select(s => BestAfter(new RandomTuner(BraninSpace.Ranges, s), 50, F)).OrderBy(v => v).ToArray();

        double tpeMedian = tpe[seeds.Length / 2], randomMedian = random[seeds.Length / 2];
        Assert.True(tpeMedian < randomMedian, $"TPE median best {tpeMedian:F4}, random {randomMedian:F4}");
        Assert.True(tpeMedian < 1.0, $"TPE median best {tpeMedian:F4} (optimum 0.398)");
    }

    [Fact]
    public void TpeModelsLogScaleAndChoicesAndProposesValidValues()
    {
        // Best near learning rate 1e-3 and the choice "b"; the other values are worse.
        var space = SweepTestDriver.Space(("lr", SearchRange.LogUniform(1e-6, 1)), ("kind", SearchRange.Choice("a", "b", "c")), ("n", SearchRange.Integer(1, 4)));
        var tuner = new TpeTuner(space.Ranges, 3, higherIsBetter: false, startupTrials: 10);
        var finished = new List<SweepTrial>();
        for (int i = 0; i < 60; i++)
        {
            var p = new SweepParameters(space, tuner.Propose(i, finished)!);
            double lr = p.Get<double>("lr");
            Assert.InRange(lr, 1e-6, 1);
            Assert.InRange(p.Get<int>("n"), 1, 4);
            double loss = Math.Abs(Math.Log10(lr) + 3) + (p.Get<string>("kind") == "b" ? 0 : 2);
            finished.Add(new SweepTrial(i, p) { Status = TrialStatus.Completed, Metric = loss });
        }
        var late = finished.Skip(40).ToList();
        int goodKind = late.Count(t => t.Parameters.Get<string>("kind") == "b");
        int nearRate = late.Count(t => Math.Abs(Math.Log10(t.Parameters.Get<double>("lr")) + 3) < 1);
        Assert.True(goodKind >= 12, $"TPE should mostly propose the good choice once it has seen it: {goodKind} of 20 (random: 1 in 3)");
        Assert.True(nearRate >= 12, $"TPE should concentrate the learning rate within a decade of 1e-3: {nearRate} of 20 (random: 1 in 3)");
    }

    [Fact]
    public void ProposalsDependOnlyOnSeedIndexAndHistory()
    {
        var a = new TpeTuner(BraninSpace.Ranges, 7, false, 3);
        var b = new TpeTuner(BraninSpace.Ranges, 7, false, 3);
        var history = Enumerable.Range(0, 5).Select(i => new SweepTrial(i, new SweepParameters(BraninSpace, new[] { i - 2.0, i * 2.0 })) { Status = TrialStatus.Completed, Metric = i }).ToList();
        Assert.Equal(a.Propose(5, history), b.Propose(5, history));
        Assert.NotEqual(a.Propose(5, history), a.Propose(6, history));
    }

    [Fact]
    public void GridCoversEveryPointOnceThenStops()
    {
        var space = SweepTestDriver.Space(("lr", SearchRange.LogUniform(1e-4, 1e-2)), ("width", SearchRange.Choice(16, 32)), ("layers", SearchRange.Integer(1, 2)));
        var grid = new GridTuner(space.Ranges, points: 3, seed: 0);
        var points = Enumerable.Range(0, 12).Select(i => new SweepParameters(space, grid.Propose(i, Array.Empty<SweepTrial>())!)).ToList();

        Assert.Null(grid.Propose(12, Array.Empty<SweepTrial>()));
        Assert.Equal(12, points.Select(p => p.ToString()).Distinct().Count());
        var rates = points.Select(p => p.Get<double>("lr")).Distinct().OrderBy(v => v).ToArray();
        Assert.Equal(3, rates.Length);
        Assert.Equal(1e-4, rates[0], 12);
        Assert.Equal(1e-3, rates[1], 12);
        Assert.Equal(1e-2, rates[2], 12);
        Assert.Equal(new[] { 16, 32 }, points.Select(p => p.Get<int>("width")).Distinct().OrderBy(v => v));
    }
}
