using MLExtensions.Sweeps;

namespace MLExtensions.Tests.Sweeps;

/// <summary>Runs tuners and pruners on scripted values, exactly as the sweep calls them, without fitting anything.</summary>
internal static class SweepTestDriver
{
    public static SearchSpace Space(params (string Name, SearchRange Range)[] ranges)
    {
        var space = new SearchSpace();
        foreach (var (name, range) in ranges)
            space.Add(name, range);
        return space;
    }

    /// <summary>Feeds each curve step by step to the pruner (never asking at the last step) and returns the finished trials.</summary>
    public static List<SweepTrial> Prune(ISweepPruner pruner, SweepResource resource, bool higherIsBetter, params double[][] curves)
    {
        var space = Space(("x", SearchRange.Uniform(0, 1)));
        var finished = new List<SweepTrial>();
        for (int i = 0; i < curves.Length; i++)
        {
            var trial = new SweepTrial(i, new SweepParameters(space, new[] { 0.5 })) { Resource = resource, IntermediateHigherIsBetter = higherIsBetter };
            trial.Status = TrialStatus.Completed;
            for (int step = 0; step < curves[i].Length; step++)
            {
                trial.IntermediateValues.Add(curves[i][step]);
                if (step < curves[i].Length - 1 && pruner.ShouldPrune(trial, finished))
                {
                    trial.Status = TrialStatus.Pruned;
                    break;
                }
            }
            trial.Metric = trial.Status == TrialStatus.Completed ? curves[i][^1] : double.NaN;
            finished.Add(trial);
        }
        return finished;
    }
}
