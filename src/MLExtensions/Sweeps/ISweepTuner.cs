using MLExtensions.Core;

namespace MLExtensions.Sweeps;

/// <summary>
/// Proposes the internal coordinates (see <see cref="SearchRange"/>) of the next trial. A proposal is a pure function of
/// the sweep's seed, the trial index and the trials finished before it, so a resumed sweep proposes exactly what an
/// uninterrupted one would.
/// </summary>
internal interface ISweepTuner
{
    /// <summary>Coordinates for trial <paramref name="trialIndex"/>, snapped to the ranges; null when the tuner has nothing left to propose (grid exhausted).</summary>
    double[]? Propose(int trialIndex, IReadOnlyList<SweepTrial> finished);
}

/// <summary>Creates the tuner an option names.</summary>
internal static class SweepTuners
{
    /// <summary>Purpose code (<see cref="Seeds.Derive"/>) of the tuner's per-trial random generator.</summary>
    public const int TunerPurpose = 101;

    public static ISweepTuner Create(SweepOptions options, SearchSpace space) => options.Tuner switch
    {
        SweepTuner.Random => new RandomTuner(space.Ranges, options.Seed),
        SweepTuner.Grid => new GridTuner(space.Ranges, options.GridPoints, options.Seed),
        _ => new TpeTuner(space.Ranges, options.Seed, SweepMetrics.HigherIsBetter(options.Metric), options.TpeStartupTrials),
    };

    /// <summary>The random generator of one trial's proposal.</summary>
    public static Random TrialRandom(int seed, int trialIndex) => new(Seeds.Derive(seed, TunerPurpose, trialIndex));

    /// <summary>A uniform draw in the internal space (log-uniform for LogUniform ranges, every integer and choice equally likely).</summary>
    public static double[] Uniform(SearchRange[] ranges, Random random) =>
        ranges.Select(r => r.Snap(r.Low + random.NextDouble() * (r.High - r.Low))).ToArray();
}

/// <summary>Independent uniform draws.</summary>
internal sealed class RandomTuner : ISweepTuner
{
    private readonly SearchRange[] _ranges;
    private readonly int _seed;

    public RandomTuner(SearchRange[] ranges, int seed)
    {
        _ranges = ranges;
        _seed = seed;
    }

    public double[]? Propose(int trialIndex, IReadOnlyList<SweepTrial> finished) =>
        SweepTuners.Uniform(_ranges, SweepTuners.TrialRandom(_seed, trialIndex));
}

/// <summary>
/// The points of a grid in a seeded random order (so a sweep cut short by its trial limit still covers the whole
/// space coarsely). Numeric ranges get <c>points</c> evenly spaced values (in log space for LogUniform); integer
/// ranges with fewer values use them all; choices use every value.
/// </summary>
internal sealed class GridTuner : ISweepTuner
{
    private readonly double[][] _grid;

    public GridTuner(SearchRange[] ranges, int points, int seed)
    {
        var axes = ranges.Select(r => Axis(r, points)).ToArray();
        IEnumerable<double[]> grid = new[] { Array.Empty<double>() };
        foreach (var axis in axes)
            grid = grid.SelectMany(prefix => axis.Select(v => prefix.Append(v).ToArray()));
        _grid = grid.ToArray();
        new Random(Seeds.Derive(seed, SweepTuners.TunerPurpose)).Shuffle(_grid);
    }

    /// <summary>Number of grid points.</summary>
    public int Count => _grid.Length;

    public double[]? Propose(int trialIndex, IReadOnlyList<SweepTrial> finished) =>
        trialIndex < _grid.Length ? _grid[trialIndex] : null;

    private static double[] Axis(SearchRange range, int points)
    {
        if (range.Kind is SearchRangeKind.Choice or SearchRangeKind.Integer && range.Max - range.Min + 1 <= points)
            return Enumerable.Range((int)range.Min, (int)(range.Max - range.Min) + 1).Select(i => (double)i).ToArray();
        double low = range.Kind == SearchRangeKind.LogUniform ? range.Low : range.Min;
        double high = range.Kind == SearchRangeKind.LogUniform ? range.High : range.Max;
        return Enumerable.Range(0, points).Select(i => range.Snap(low + (high - low) * i / (points - 1))).Distinct().ToArray();
    }
}
