using System.Diagnostics;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;

namespace MLExtensions.Sweeps;

/// <summary>
/// A hyperparameter search over any ML.NET pipeline, created by <c>mlContext.Sweep(space, factory, options)</c>.
/// Each trial asks the tuner for parameters, builds the pipeline with the factory, fits it while the pruner watches
/// its intermediate values, and scores it with the task's <c>Evaluate</c>. Trials run one after another.
/// </summary>
/// <remarks>
/// Intermediate values: a pipeline containing a network of this library reports the training loop's validation value
/// after every epoch (see <see cref="SweepResource.Epochs"/>); any other pipeline (LightGbm, SDCA, …) is fitted on
/// 1/9, 1/3 and all of the training rows and scored after each (successive halving on subsamples,
/// <see cref="SweepResource.RowFraction"/>). Cancel with <c>mlContext.CancelExecution()</c>: the running network stops
/// within a batch and <see cref="Run"/> throws <see cref="OperationCanceledException"/>; with a journal, the next run resumes.
/// </remarks>
public sealed class HyperparameterSweep
{
    /// <summary>Row fractions of the subsample rungs for pipelines without epochs (η = 3).</summary>
    internal static readonly double[] RowFractions = { 1.0 / 9, 1.0 / 3, 1.0 };

    internal const int SplitPurpose = 102;
    private const int SubsamplePurpose = 103;
    private readonly MLContext _ml;
    private readonly IHost _host;
    private readonly SearchSpace _space;
    private readonly Func<SweepParameters, IEstimator<ITransformer>> _pipeline;
    private readonly SweepOptions _options;

    internal HyperparameterSweep(MLContext ml, SearchSpace space, Func<SweepParameters, IEstimator<ITransformer>> pipeline, SweepOptions options)
    {
        _ml = ml ?? throw new ArgumentNullException(nameof(ml));
        _space = space ?? throw new ArgumentNullException(nameof(space));
        _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (space.Count == 0)
            throw new ArgumentException("The search space is empty; add at least one parameter with SearchSpace.Add.", nameof(space));
        options.Validate();
        _host = ((IHostEnvironment)ml).Register("Sweep");
    }

    /// <summary>Runs the sweep (or resumes it from <see cref="SweepOptions.JournalPath"/>).</summary>
    /// <param name="train">Training data, in the columns the pipeline expects.</param>
    /// <param name="validation">Data to score trials on; null holds out <see cref="SweepOptions.ValidationFraction"/> of <paramref name="train"/> (or uses cross-validation folds).</param>
    /// <returns>All trials and the best model.</returns>
    /// <exception cref="InvalidOperationException">No trial completed; when all failed, the message and inner exception carry the first errors.</exception>
    /// <exception cref="OperationCanceledException">The <c>MLContext</c> was cancelled.</exception>
    public SweepResult Run(IDataView train, IDataView? validation = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        _options.Validate();
        using var channel = _host.Start("Sweep");
        // MLContext.CancelExecution is ML.NET's (internal) cancellation that every trainer checks; AutoML uses it too.
        using var cancellation = _options.CancellationToken.Register(() => _ml.CancelExecution());
        var folds = Folds(train, validation);
        var (journal, finished) = _options.JournalPath is string path ? SweepJournal.Open(path, _space, _options) : (null, new List<SweepTrial>());
        if (finished.Count > 0)
            channel.Info(MessageSensitivity.None, "Resuming the sweep from {0}: {1} trials already finished.", _options.JournalPath, finished.Count);
        var tuner = SweepTuners.Create(_options, _space);
        var pruner = SweepPruners.Create(_options.Pruner);
        var errors = new List<Exception>();
        var clock = Stopwatch.StartNew();
        ITransformer? bestModel = null;
        int? bestModelTrial = null;

        for (int index = finished.Count; _options.MaxTrials <= 0 || index < _options.MaxTrials; index++)
        {
            if (_options.TimeBudget is TimeSpan budget && clock.Elapsed >= budget)
            {
                channel.Info(MessageSensitivity.None, "Time budget of {0} reached after {1} trials.", budget, index);
                break;
            }
            if (_options.ResourceBudget is double resource && finished.Sum(t => t.ResourceUsed) >= resource)
            {
                channel.Info(MessageSensitivity.None, "Resource budget of {0} reached after {1} trials.", resource, index);
                break;
            }
            _host.CheckAlive();
            if (tuner.Propose(index, finished) is not double[] coordinates)
                break;
            var trial = new SweepTrial(index, new SweepParameters(_space, coordinates));
            Report(SweepProgressKind.TrialStarted, trial, finished, clock);
            var model = RunTrial(trial, folds, finished, pruner, errors, clock);
            finished.Add(trial);
            journal?.Append(trial);
            if (trial.Status == TrialStatus.Completed && IsBest(trial, finished) && !_options.RefitBestModel)
                (bestModel, bestModelTrial) = (model, trial.Index);
            channel.Info(MessageSensitivity.None, "Trial {0}: {1}, {2} {3:G4} after {4:F1} s ({5}); best so far {6:G4}.", index, trial.Status, _options.Metric,
                trial.Metric, trial.Duration.TotalSeconds, trial.Parameters, Best(finished)?.Metric ?? double.NaN);
            Report(SweepProgressKind.TrialFinished, trial, finished, clock);
        }

        var best = Best(finished) ?? throw NoTrialCompleted(finished, errors);
        if (bestModelTrial != best.Index)
        {
            channel.Info(MessageSensitivity.None, "Refitting the best parameters ({0}) on all training rows.", best.Parameters);
            bestModel = _pipeline(best.Parameters).Fit(_options.RefitBestModel ? train : folds[0].Train);
        }
        return new SweepResult(bestModel!, best, finished, _options);
    }

    private ITransformer? RunTrial(SweepTrial trial, (IDataView Train, IDataView Validation)[] folds, List<SweepTrial> finished, ISweepPruner pruner,
        List<Exception> errors, Stopwatch sweepClock)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var estimator = _pipeline(trial.Parameters) ?? throw new InvalidOperationException("The pipeline factory returned null.");
            trial.Resource = HasEpochs(estimator) ? SweepResource.Epochs : SweepResource.RowFraction;
            ITransformer? firstModel = null;
            double sum = 0;
            for (int f = 0; f < folds.Length; f++)
            {
                var (model, metric) = trial.Resource == SweepResource.Epochs
                    ? FitWatchingEpochs(trial, estimator, folds[f], watch: f == 0, finished, pruner, sweepClock)
                    : FitOnSubsamples(trial, estimator, folds[f], watch: f == 0, finished, pruner, sweepClock);
                if (trial.Status == TrialStatus.Pruned)
                    return null;
                firstModel ??= model;
                sum += metric;
            }
            trial.Metric = sum / folds.Length;
            trial.Status = TrialStatus.Completed;
            return firstModel;
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception e)
        {
            trial.Status = TrialStatus.Failed;
            trial.Metric = double.NaN;
            trial.Error = $"{e.GetType().Name}: {e.Message}";
            errors.Add(e);
            return null;
        }
        finally
        {
            trial.Duration = clock.Elapsed;
        }
    }

    private (ITransformer Model, double Metric) FitWatchingEpochs(SweepTrial trial, IEstimator<ITransformer> estimator, (IDataView Train, IDataView Validation) fold,
        bool watch, List<SweepTrial> finished, ISweepPruner pruner, Stopwatch clock)
    {
        var observer = new TrialObserver(trial, finished, pruner, _options, watch, () => Report(SweepProgressKind.IntermediateValue, trial, finished, clock));
        ITransformer model;
        try
        {
            using (AmbientTrainingCallback.Use(observer))
                model = estimator.Fit(fold.Train);
        }
        finally
        {
            trial.ResourceUsed += observer.Epochs; // a trial that fails or is cancelled mid-way still spent its epochs
        }
        if (observer.Pruned)
        {
            trial.Status = TrialStatus.Pruned;
            return (model, double.NaN);
        }
        return (model, SweepMetrics.Evaluate(_ml, _options.Task, _options.Metric, model, fold.Validation));
    }

    private (ITransformer Model, double Metric) FitOnSubsamples(SweepTrial trial, IEstimator<ITransformer> estimator, (IDataView Train, IDataView Validation) fold,
        bool watch, List<SweepTrial> finished, ISweepPruner pruner, Stopwatch clock)
    {
        trial.IntermediateMetricName = _options.Metric.ToString();
        trial.IntermediateHigherIsBetter = SweepMetrics.HigherIsBetter(_options.Metric);
        // Other folds are fitted on all their rows only: the rungs decided on the first fold already. Without a
        // pruner nothing would stop at a rung, so the subsamples would be wasted work.
        var fractions = watch && pruner is not NoPruner ? RowFractions : new[] { 1.0 };
        ITransformer? model = null;
        double metric = double.NaN;
        for (int step = 0; step < fractions.Length; step++)
        {
            _host.CheckAlive();
            // Same seed for every fraction: ML.NET's split keeps the rows whose random value is above the test
            // fraction, so the 1/9 subsample is inside the 1/3 one.
            var rows = fractions[step] < 1
                ? _ml.Data.TrainTestSplit(fold.Train, testFraction: 1 - fractions[step], seed: Seeds.Derive(_options.Seed, SubsamplePurpose)).TrainSet
                : fold.Train;
            model = estimator.Fit(rows);
            metric = SweepMetrics.Evaluate(_ml, _options.Task, _options.Metric, model, fold.Validation);
            trial.ResourceUsed += fractions[step];
            if (!watch)
                break;
            trial.IntermediateValues.Add(metric);
            Report(SweepProgressKind.IntermediateValue, trial, finished, clock);
            if (step < fractions.Length - 1 && pruner.ShouldPrune(trial, finished))
            {
                trial.Status = TrialStatus.Pruned;
                return (model, double.NaN);
            }
        }
        return (model!, metric);
    }

    private (IDataView Train, IDataView Validation)[] Folds(IDataView train, IDataView? validation)
    {
        int seed = Seeds.Derive(_options.Seed, SplitPurpose);
        if (_options.CrossValidationFolds >= 2)
            return _ml.Data.CrossValidationSplit(train, _options.CrossValidationFolds, seed: seed).Select(f => (f.TrainSet, f.TestSet)).ToArray();
        if (validation is not null)
            return new[] { (train, validation) };
        var split = _ml.Data.TrainTestSplit(train, _options.ValidationFraction, seed: seed);
        return new[] { (split.TrainSet, split.TestSet) };
    }

    /// <summary>Whether the pipeline contains a network trained by this library's loop (so epochs can be watched).</summary>
    internal static bool HasEpochs(IEstimator<ITransformer> estimator)
    {
        var type = estimator.GetType();
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(EstimatorChain<>))
        {
            // EstimatorChain<TLast> keeps its parts in a private array; the last transformer type varies, so read it by reflection.
            var parts = (IEstimator<ITransformer>[]?)type.GetField("_estimators", BindingFlags.Instance | BindingFlags.NonPublic)?.GetValue(estimator);
            return parts?.Any(HasEpochs) ?? false;
        }
        if (estimator is Distillation.DistillationTrainer)
            return true;
        for (var t = type; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(NetworkTrainerBase<>))
                return true;
        return false;
    }

    private bool IsBest(SweepTrial trial, List<SweepTrial> finished) => Best(finished) == trial;

    private SweepTrial? Best(IReadOnlyList<SweepTrial> trials)
    {
        bool higher = SweepMetrics.HigherIsBetter(_options.Metric);
        SweepTrial? best = null;
        foreach (var t in trials.Where(t => t.Status == TrialStatus.Completed && !double.IsNaN(t.Metric)))
            if (best is null || (higher ? t.Metric > best.Metric : t.Metric < best.Metric))
                best = t;
        return best;
    }

    private void Report(SweepProgressKind kind, SweepTrial trial, List<SweepTrial> finished, Stopwatch clock) =>
        _options.Progress?.Report(new SweepProgress(kind, trial, finished.Count, _options.MaxTrials > 0 ? _options.MaxTrials : null,
            Best(finished)?.Metric ?? double.NaN, clock.Elapsed));

    private static InvalidOperationException NoTrialCompleted(List<SweepTrial> trials, List<Exception> errors)
    {
        if (trials.Count == 0)
            return new InvalidOperationException("The sweep ran no trial (the time budget ended before the first, or the grid is empty).");
        var failed = trials.Where(t => t.Status == TrialStatus.Failed).ToList();
        if (failed.Count == trials.Count)
        {
            string first = string.Join(" | ", failed.Take(3).Select(t => $"trial {t.Index} ({t.Parameters}): {t.Error}"));
            return new InvalidOperationException($"All {trials.Count} trials failed. First errors: {first}",
                errors.Count > 0 ? new AggregateException(errors.Take(3)) : null);
        }
        return new InvalidOperationException($"No trial completed: {failed.Count} failed, {trials.Count - failed.Count} were pruned.");
    }
}
