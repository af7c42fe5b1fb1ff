namespace MLExtensions.Sweeps;

/// <summary>
/// Decides, after a trial reported an intermediate value, whether it stops. The sweep never asks at a trial's last
/// step (a finished trial is scored, not pruned). Values are compared as "higher is better" scores
/// (<see cref="SweepTrial.Score"/>), so the direction of the intermediate metric does not matter here.
/// </summary>
internal interface ISweepPruner
{
    /// <summary>Whether <paramref name="trial"/> stops now; its newest value is <c>IntermediateValues[^1]</c>, at step <c>IntermediateValues.Count</c> (1-based).</summary>
    bool ShouldPrune(SweepTrial trial, IReadOnlyList<SweepTrial> finished);
}

/// <summary>Creates the pruner an option names.</summary>
internal static class SweepPruners
{
    public static ISweepPruner Create(SweepPruner pruner) => pruner switch
    {
        SweepPruner.Median => new MedianPruner(),
        SweepPruner.Asha => new AshaPruner(),
        _ => new NoPruner(),
    };
}

/// <summary>Never stops a trial.</summary>
internal sealed class NoPruner : ISweepPruner
{
    public bool ShouldPrune(SweepTrial trial, IReadOnlyList<SweepTrial> finished) => false;
}

/// <summary>
/// Optuna's <c>MedianPruner</c> with its defaults (<c>n_startup_trials=5, n_warmup_steps=0, interval_steps=1</c>):
/// no pruning until 5 trials have completed; then a trial stops at step s when its best value up to s is worse than
/// the median of the completed trials' values at step s (only completed trials that reached s count; with none,
/// the trial goes on). A NaN value stops the trial.
/// </summary>
internal sealed class MedianPruner : ISweepPruner
{
    public const int StartupTrials = 5;
    public const int WarmupSteps = 0;

    public bool ShouldPrune(SweepTrial trial, IReadOnlyList<SweepTrial> finished)
    {
        int step = trial.IntermediateValues.Count; // 1-based
        var completed = finished.Where(t => t.Status == TrialStatus.Completed).ToList();
        if (completed.Count < StartupTrials || step <= WarmupSteps)
            return false;
        double best = Enumerable.Range(0, step).Select(trial.Score).Max();
        if (double.IsNaN(trial.IntermediateValues[^1]) || double.IsNaN(best))
            return true;
        var atStep = completed.Where(t => t.IntermediateValues.Count >= step).Select(t => t.Score(step - 1)).Where(v => !double.IsNaN(v)).ToList();
        if (atStep.Count == 0)
            return false;
        return best < Median(atStep);
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
    }
}

/// <summary>
/// Asynchronous successive halving (Li et al. 2020; Optuna's <c>SuccessiveHalvingPruner</c> with reduction factor η = 3,
/// minimum resource 1). Rungs sit at steps 1, 3, 9, 27, … (epochs; with row subsamples every step — 1/9, 1/3 of the rows
/// — is a rung). At a rung, the trial's value joins the values every earlier trial recorded at that rung; it goes on
/// only if it is among the best ⌊n/η⌋ of those n values (the best one when n &lt; η, as Optuna does because a sequential
/// sweep cannot pause a trial and promote it later). Between rungs, trials always go on.
/// </summary>
internal sealed class AshaPruner : ISweepPruner
{
    public const int ReductionFactor = 3;

    public bool ShouldPrune(SweepTrial trial, IReadOnlyList<SweepTrial> finished)
    {
        int step = trial.IntermediateValues.Count;
        if (!IsRung(step, trial.Resource))
            return false;
        double value = trial.Score(step - 1);
        if (double.IsNaN(value))
            return true;
        var competing = finished.Where(t => t.Resource == trial.Resource && t.IntermediateValues.Count >= step)
            .Select(t => t.Score(step - 1)).Where(v => !double.IsNaN(v)).Append(value).OrderByDescending(v => v).ToList();
        int promoted = Math.Max(1, competing.Count / ReductionFactor);
        return value < competing[promoted - 1];
    }

    /// <summary>Whether a decision is taken after step <paramref name="step"/> (1-based).</summary>
    public static bool IsRung(int step, SweepResource resource)
    {
        if (resource == SweepResource.RowFraction)
            return true;
        for (int rung = 1; rung <= step; rung *= ReductionFactor)
            if (rung == step)
                return true;
        return false;
    }
}
