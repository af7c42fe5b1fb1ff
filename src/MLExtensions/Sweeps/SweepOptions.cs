namespace MLExtensions.Sweeps;

/// <summary>What kind of model the pipeline produces; decides which catalog's <c>Evaluate</c> scores a trial.</summary>
public enum SweepTask
{
    /// <summary>Two classes: <c>mlContext.BinaryClassification.Evaluate</c> (Label Boolean, Score, Probability, PredictedLabel).</summary>
    BinaryClassification,

    /// <summary>K classes: <c>mlContext.MulticlassClassification.Evaluate</c> (Label key, Score vector, PredictedLabel key).</summary>
    MulticlassClassification,

    /// <summary>A number: <c>mlContext.Regression.Evaluate</c> (Label Single, Score).</summary>
    Regression,
}

/// <summary>The metric a sweep optimizes; whether higher is better follows from the metric.</summary>
public enum SweepMetric
{
    /// <summary>Multiclass: fraction of rows predicted correctly (higher is better).</summary>
    MicroAccuracy,

    /// <summary>Multiclass: mean over classes of the per-class accuracy (higher is better).</summary>
    MacroAccuracy,

    /// <summary>Binary or multiclass: log-loss as ML.NET computes it (lower is better).</summary>
    LogLoss,

    /// <summary>Binary: fraction of rows predicted correctly (higher is better).</summary>
    Accuracy,

    /// <summary>Binary: area under the ROC curve (higher is better).</summary>
    AreaUnderRocCurve,

    /// <summary>Binary: F1 score of the positive class (higher is better).</summary>
    F1Score,

    /// <summary>Regression: coefficient of determination (higher is better).</summary>
    RSquared,

    /// <summary>Regression: mean absolute error (lower is better).</summary>
    MeanAbsoluteError,

    /// <summary>Regression: root mean squared error (lower is better).</summary>
    RootMeanSquaredError,
}

/// <summary>How a sweep proposes the next trial's parameters.</summary>
public enum SweepTuner
{
    /// <summary>Independent uniform draws (log-uniform for LogUniform ranges).</summary>
    Random,

    /// <summary>The points of a grid (<see cref="SweepOptions.GridPoints"/> per numeric range, every choice), in a seeded random order.</summary>
    Grid,

    /// <summary>A tree-structured Parzen estimator (as in Optuna): after random start-up trials, proposes where good trials are dense and bad ones are not.</summary>
    Tpe,
}

/// <summary>How a sweep stops unpromising trials early, from their intermediate values.</summary>
public enum SweepPruner
{
    /// <summary>Every trial runs to the end.</summary>
    None,

    /// <summary>
    /// Optuna's median rule: after 5 finished trials, a trial whose best intermediate value so far is worse than the
    /// median of the finished trials' values at the same step is stopped.
    /// </summary>
    Median,

    /// <summary>
    /// Asynchronous successive halving (ASHA): rungs at 1, 3, 9, 27, … epochs (or 1/9, 1/3 of the rows); a trial
    /// continues past a rung only when it is in the top third of the values recorded at that rung.
    /// </summary>
    Asha,
}

/// <summary>Settings of a hyperparameter sweep (<c>mlContext.Sweep</c>).</summary>
public sealed class SweepOptions
{
    /// <summary>What the pipeline predicts; chooses the evaluator. Default multiclass classification.</summary>
    public SweepTask Task { get; set; } = SweepTask.MulticlassClassification;

    /// <summary>The metric to optimize; must belong to <see cref="Task"/>. Default micro-accuracy.</summary>
    public SweepMetric Metric { get; set; } = SweepMetric.MicroAccuracy;

    /// <summary>Number of trials (the journal's trials count). ≤ 0 means no limit, which needs a <see cref="TimeBudget"/> or a <see cref="ResourceBudget"/>. Default 20.</summary>
    public int MaxTrials { get; set; } = 20;

    /// <summary>No trial starts after this much time has passed; null for no limit. Default null.</summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>
    /// No trial starts once the trials together have used this much resource (<see cref="SweepTrial.ResourceUsed"/>:
    /// epochs, or fractions of the training rows); null for no limit. Compares sweeps at an equal training budget. Default null.
    /// </summary>
    public double? ResourceBudget { get; set; }

    /// <summary>How parameters are proposed. Default <see cref="SweepTuner.Tpe"/>.</summary>
    public SweepTuner Tuner { get; set; } = SweepTuner.Tpe;

    /// <summary>How unpromising trials are stopped. Default <see cref="SweepPruner.Asha"/>.</summary>
    public SweepPruner Pruner { get; set; } = SweepPruner.Asha;

    /// <summary>
    /// Folds of cross-validation per trial; 0 (default) scores on the validation data given to
    /// <see cref="HyperparameterSweep.Run"/>, or on <see cref="ValidationFraction"/> of the training rows held out.
    /// With folds, the pruner watches the first fold and the metric is the mean over all folds.
    /// </summary>
    public int CrossValidationFolds { get; set; }

    /// <summary>Fraction of the training rows held out to score trials when no validation data is given and <see cref="CrossValidationFolds"/> is 0, in (0, 0.9]. Default 0.2.</summary>
    public double ValidationFraction { get; set; } = 0.2;

    /// <summary>Seed of the tuner, the validation split and the subsamples. The same seed gives the same trials. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Refit the best parameters on all the training data given to <see cref="HyperparameterSweep.Run"/> for <see cref="SweepResult.BestModel"/>; false keeps the model the best trial fitted (refitted anyway when that trial came from a journal). Default true.</summary>
    public bool RefitBestModel { get; set; } = true;

    /// <summary>Points per numeric range for <see cref="SweepTuner.Grid"/> (integer ranges with fewer values use them all), ≥ 2. Default 3.</summary>
    public int GridPoints { get; set; } = 3;

    /// <summary>Random trials before <see cref="SweepTuner.Tpe"/> starts modelling, ≥ 1. Default 10 (Optuna's).</summary>
    public int TpeStartupTrials { get; set; } = 10;

    /// <summary>Receives a report when a trial starts, after each intermediate value and when a trial ends.</summary>
    public IProgress<SweepProgress>? Progress { get; set; }

    /// <summary>
    /// Cancels the sweep: it cancels the <c>MLContext</c> (as ML.NET AutoML does), so the running network stops within a
    /// batch and <see cref="HyperparameterSweep.Run"/> throws <see cref="OperationCanceledException"/>. The context stays
    /// cancelled; resume with a new one.
    /// </summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>A JSON-lines file recording every finished trial (rewritten atomically after each); an existing journal is resumed. Null for none.</summary>
    public string? JournalPath { get; set; }

    /// <summary>Throws an exception naming the first invalid setting.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A number is out of range, or the metric does not belong to the task.</exception>
    public void Validate()
    {
        if (MaxTrials <= 0 && TimeBudget is null && ResourceBudget is null)
            throw new ArgumentOutOfRangeException(nameof(MaxTrials), MaxTrials, $"MaxTrials must be > 0 when neither TimeBudget nor ResourceBudget is set; found {MaxTrials}.");
        if (ResourceBudget is double resource && !(resource > 0 && double.IsFinite(resource)))
            throw new ArgumentOutOfRangeException(nameof(ResourceBudget), resource, $"ResourceBudget must be a finite number > 0; found {resource}.");
        if (TimeBudget is TimeSpan budget && budget <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(TimeBudget), budget, $"TimeBudget must be positive; found {budget}.");
        if (!Enum.IsDefined(Task))
            throw new ArgumentOutOfRangeException(nameof(Task), Task, $"Task must be one of {string.Join(", ", Enum.GetNames<SweepTask>())}; found {Task}.");
        if (!SweepMetrics.Fits(Task, Metric))
            throw new ArgumentOutOfRangeException(nameof(Metric), Metric,
                $"Metric {Metric} does not belong to Task {Task}; use one of {string.Join(", ", SweepMetrics.For(Task))}.");
        if (CrossValidationFolds < 0 || CrossValidationFolds == 1)
            throw new ArgumentOutOfRangeException(nameof(CrossValidationFolds), CrossValidationFolds, $"CrossValidationFolds must be 0 (no cross-validation) or ≥ 2; found {CrossValidationFolds}.");
        if (!(ValidationFraction > 0 && ValidationFraction <= 0.9))
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, $"ValidationFraction must be in (0, 0.9]; found {ValidationFraction}.");
        if (GridPoints < 2)
            throw new ArgumentOutOfRangeException(nameof(GridPoints), GridPoints, $"GridPoints must be ≥ 2; found {GridPoints}.");
        if (TpeStartupTrials < 1)
            throw new ArgumentOutOfRangeException(nameof(TpeStartupTrials), TpeStartupTrials, $"TpeStartupTrials must be ≥ 1; found {TpeStartupTrials}.");
        if (JournalPath is not null && string.IsNullOrWhiteSpace(JournalPath))
            throw new ArgumentException("JournalPath must be a file path or null; found an empty string.", nameof(JournalPath));
    }
}
