namespace MLExtensions.Sweeps;

/// <summary>
/// Tree-structured Parzen estimator (Bergstra et al. 2011, as Optuna implements it by default): after
/// <c>startupTrials</c> random trials, the finished trials are split by a quantile into "good" (the best
/// γ(n) = min(⌈0.1 n⌉, 25)) and "bad"; each parameter gets two Parzen densities, l(x) over the good values and g(x)
/// over the bad ones; candidates are drawn from l and the one with the largest l(x)/g(x) is proposed.
/// </summary>
/// <remarks>
/// Parameters are modelled independently (Optuna's default, <c>multivariate=False</c>). Numeric parameters are
/// mixtures of Gaussians truncated to the range, in log space for LogUniform ranges, centred on the observations plus a
/// prior component at the middle of the range; each component's bandwidth is the larger distance to its neighbours,
/// clipped to [range / min(100, n + 1), range] (Optuna's "magic clip"). Integers are modelled as continuous values and
/// rounded. Choices use the observed frequencies plus a uniform prior. Pruned trials count as worse than every
/// completed one (ranked among themselves by how far they got, then by their last intermediate value); failed trials
/// are ignored.
/// </remarks>
internal sealed class TpeTuner : ISweepTuner
{
    private const int Candidates = 24;
    private const double PriorWeight = 1.0;
    private readonly SearchRange[] _ranges;
    private readonly int _seed;
    private readonly bool _higherIsBetter;
    private readonly int _startupTrials;

    public TpeTuner(SearchRange[] ranges, int seed, bool higherIsBetter, int startupTrials)
    {
        _ranges = ranges;
        _seed = seed;
        _higherIsBetter = higherIsBetter;
        _startupTrials = startupTrials;
    }

    public double[]? Propose(int trialIndex, IReadOnlyList<SweepTrial> finished)
    {
        var random = SweepTuners.TrialRandom(_seed, trialIndex);
        var ranked = Rank(finished);
        if (ranked.Count < _startupTrials)
            return SweepTuners.Uniform(_ranges, random);

        int good = Math.Min((int)Math.Ceiling(0.1 * ranked.Count), 25);
        var proposal = new double[_ranges.Length];
        for (int p = 0; p < _ranges.Length; p++)
        {
            var range = _ranges[p];
            var below = ranked.Take(good).Select(t => t.Parameters.Coordinates[p]).ToArray();
            var above = ranked.Skip(good).Select(t => t.Parameters.Coordinates[p]).ToArray();
            proposal[p] = range.IsCategorical ? ProposeCategory(range, below, above, random) : ProposeNumber(range, below, above, random);
        }
        return proposal;
    }

    /// <summary>Usable trials from best to worst.</summary>
    private List<SweepTrial> Rank(IReadOnlyList<SweepTrial> finished)
    {
        var completed = finished.Where(t => t.Status == TrialStatus.Completed && !double.IsNaN(t.Metric))
            .OrderBy(t => _higherIsBetter ? -t.Metric : t.Metric).ThenBy(t => t.Index);
        var pruned = finished.Where(t => t.Status == TrialStatus.Pruned && t.IntermediateValues.Count > 0)
            .OrderByDescending(t => t.IntermediateValues.Count).ThenByDescending(t => t.Score(t.IntermediateValues.Count - 1)).ThenBy(t => t.Index);
        return completed.Concat(pruned).ToList();
    }

    private static double ProposeNumber(SearchRange range, double[] below, double[] above, Random random)
    {
        var l = ParzenEstimator.Fit(below, range.Low, range.High);
        var g = ParzenEstimator.Fit(above, range.Low, range.High);
        double best = double.NaN, bestScore = double.NegativeInfinity;
        for (int i = 0; i < Candidates; i++)
        {
            double x = l.Sample(random);
            double score = l.LogDensity(x) - g.LogDensity(x);
            if (score > bestScore)
            {
                bestScore = score;
                best = x;
            }
        }
        return range.Snap(best);
    }

    private static double ProposeCategory(SearchRange range, double[] below, double[] above, Random random)
    {
        int k = range.Values.Count;
        double[] Weights(double[] observed)
        {
            var w = Enumerable.Repeat(PriorWeight / k, k).ToArray();
            foreach (double c in observed)
                w[(int)c] += 1;
            double sum = w.Sum();
            return w.Select(v => v / sum).ToArray();
        }
        var l = Weights(below);
        var g = Weights(above);
        int best = 0;
        double bestScore = double.NegativeInfinity;
        for (int i = 0; i < Candidates; i++)
        {
            int c = SampleIndex(l, random);
            double score = Math.Log(l[c]) - Math.Log(g[c]);
            if (score > bestScore)
            {
                bestScore = score;
                best = c;
            }
        }
        return best;
    }

    private static int SampleIndex(double[] probabilities, Random random)
    {
        double u = random.NextDouble(), sum = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            sum += probabilities[i];
            if (u < sum)
                return i;
        }
        return probabilities.Length - 1;
    }
}

/// <summary>A mixture of Gaussians truncated to [low, high]: one per observation plus a broad prior at the middle.</summary>
internal sealed class ParzenEstimator
{
    private readonly double[] _mu;
    private readonly double[] _sigma;
    private readonly double[] _weight;
    private readonly double _low;
    private readonly double _high;

    private ParzenEstimator(double[] mu, double[] sigma, double[] weight, double low, double high)
    {
        _mu = mu;
        _sigma = sigma;
        _weight = weight;
        _low = low;
        _high = high;
    }

    public static ParzenEstimator Fit(double[] observations, double low, double high)
    {
        double width = high - low;
        double priorMu = 0.5 * (low + high);
        var mu = observations.Append(priorMu).OrderBy(v => v).ToArray();
        int n = mu.Length;
        var sigma = new double[n];
        for (int i = 0; i < n; i++)
        {
            double left = i > 0 ? mu[i] - mu[i - 1] : mu[i] - low;
            double right = i < n - 1 ? mu[i + 1] - mu[i] : high - mu[i];
            sigma[i] = Math.Max(left, right);
        }
        double minSigma = width / Math.Min(100.0, n + 1);
        for (int i = 0; i < n; i++)
            sigma[i] = Math.Clamp(sigma[i], minSigma, width);
        // The prior component keeps the full width, so the density never vanishes anywhere in the range.
        int prior = Array.IndexOf(mu, priorMu);
        sigma[prior] = width;
        var weight = Enumerable.Repeat(1.0, n).ToArray();
        double total = weight.Sum();
        return new ParzenEstimator(mu, sigma, weight.Select(w => w / total).ToArray(), low, high);
    }

    public double Sample(Random random)
    {
        double u = random.NextDouble(), sum = 0;
        int k = _mu.Length - 1;
        for (int i = 0; i < _mu.Length; i++)
        {
            sum += _weight[i];
            if (u < sum)
            {
                k = i;
                break;
            }
        }
        // Rejection sampling from the truncated normal: each component keeps a sizeable mass inside the range
        // (its centre is inside), so few draws are needed; clamp as a last resort.
        for (int attempt = 0; attempt < 100; attempt++)
        {
            double x = _mu[k] + _sigma[k] * StandardNormal(random);
            if (x >= _low && x <= _high)
                return x;
        }
        return Math.Clamp(_mu[k], _low, _high);
    }

    public double LogDensity(double x)
    {
        double density = 0;
        for (int i = 0; i < _mu.Length; i++)
        {
            double z = (x - _mu[i]) / _sigma[i];
            double mass = NormalCdf((_high - _mu[i]) / _sigma[i]) - NormalCdf((_low - _mu[i]) / _sigma[i]);
            density += _weight[i] * Math.Exp(-0.5 * z * z) / (_sigma[i] * Math.Sqrt(2 * Math.PI) * Math.Max(mass, 1e-12));
        }
        return Math.Log(Math.Max(density, 1e-300));
    }

    private static double StandardNormal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static double NormalCdf(double z) => 0.5 * (1 + Erf(z / Math.Sqrt(2)));

    /// <summary>Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, ample for comparing densities).</summary>
    private static double Erf(double x)
    {
        double sign = Math.Sign(x);
        x = Math.Abs(x);
        double t = 1 / (1 + 0.3275911 * x);
        double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return sign * y;
    }
}
