namespace MLExtensions.Sweeps;

/// <summary>How a trial ended.</summary>
public enum TrialStatus
{
    /// <summary>Trained to the end and scored.</summary>
    Completed,

    /// <summary>Stopped early by the pruner; <see cref="SweepTrial.Metric"/> is NaN.</summary>
    Pruned,

    /// <summary>The factory or the fit threw; <see cref="SweepTrial.Error"/> says why and <see cref="SweepTrial.Metric"/> is NaN.</summary>
    Failed,
}

/// <summary>What the tuner knows as a trial's resource: epochs of the networks in the pipeline, or fractions of the training rows.</summary>
public enum SweepResource
{
    /// <summary>The pipeline contains a network of this library: one intermediate value per epoch, from the training loop's validation.</summary>
    Epochs,

    /// <summary>No epochs to watch (LightGbm, SDCA, …): the pipeline is fitted on 1/9, 1/3 and all of the training rows, one intermediate value per subsample.</summary>
    RowFraction,
}

/// <summary>One trial of a sweep: its parameters, what it reported while training and how it ended.</summary>
public sealed class SweepTrial
{
    internal SweepTrial(int index, SweepParameters parameters)
    {
        Index = index;
        Parameters = parameters;
    }

    /// <summary>0-based position in the sweep (the order trials ran).</summary>
    public int Index { get; }

    /// <summary>The hyperparameter values.</summary>
    public SweepParameters Parameters { get; }

    /// <summary>How the resource was measured for this trial.</summary>
    public SweepResource Resource { get; internal set; }

    /// <summary>
    /// One value per epoch (or per row subsample) reached. For epochs these come from the training loop's validation:
    /// see <see cref="IntermediateMetricName"/> for what was measured (it is the sweep metric when the loop computes it).
    /// </summary>
    public IReadOnlyList<double> IntermediateMetrics => IntermediateValues;

    /// <summary>What <see cref="IntermediateMetrics"/> measure, e.g. "Accuracy", "LogLoss" or "RMSE".</summary>
    public string IntermediateMetricName { get; internal set; } = "";

    /// <summary>Whether larger <see cref="IntermediateMetrics"/> are better.</summary>
    public bool IntermediateHigherIsBetter { get; internal set; } = true;

    /// <summary>The sweep metric on the validation data (mean over folds with cross-validation); NaN when pruned or failed.</summary>
    public double Metric { get; internal set; } = double.NaN;

    /// <summary>How the trial ended.</summary>
    public TrialStatus Status { get; internal set; }

    /// <summary>The error of a failed trial ("ExceptionType: message"); null otherwise.</summary>
    public string? Error { get; internal set; }

    /// <summary>Wall time of the trial.</summary>
    public TimeSpan Duration { get; internal set; }

    /// <summary>Resource spent: epochs trained (all networks of the pipeline, all folds), or the sum of the row fractions fitted.</summary>
    public double ResourceUsed { get; internal set; }

    internal List<double> IntermediateValues { get; } = new();

    /// <summary>The intermediate values as "higher is better" scores (what the pruners compare).</summary>
    internal double Score(int step) => IntermediateHigherIsBetter ? IntermediateValues[step] : -IntermediateValues[step];

    /// <inheritdoc />
    public override string ToString() => $"Trial {Index}: {Status}, metric {Metric:G4} ({Parameters})";
}

/// <summary>What a progress report is about.</summary>
public enum SweepProgressKind
{
    /// <summary>A trial is about to fit.</summary>
    TrialStarted,

    /// <summary>A trial reported an intermediate value (after an epoch or a subsample).</summary>
    IntermediateValue,

    /// <summary>A trial ended (completed, pruned or failed).</summary>
    TrialFinished,
}

/// <summary>A progress report of a sweep.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Trial">The trial concerned.</param>
/// <param name="TrialsFinished">Trials finished so far (including resumed ones).</param>
/// <param name="MaxTrials">The trial limit; null when only a time budget limits the sweep.</param>
/// <param name="BestMetric">The best metric so far; NaN before the first completed trial.</param>
/// <param name="Elapsed">Time since the sweep started (this run).</param>
public sealed record SweepProgress(SweepProgressKind Kind, SweepTrial Trial, int TrialsFinished, int? MaxTrials, double BestMetric, TimeSpan Elapsed);
