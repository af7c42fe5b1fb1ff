using Microsoft.ML;
using MLExtensions.Sweeps;

namespace MLExtensions;

/// <summary>Hyperparameter sweeps on <c>MLContext</c>.</summary>
public static class SweepCatalogExtensions
{
    /// <summary>
    /// A hyperparameter sweep over the pipelines <paramref name="pipeline"/> builds from each trial's parameters, with
    /// early pruning of unpromising trials (ASHA and TPE by default). Call <see cref="HyperparameterSweep.Run"/> to run it.
    /// </summary>
    /// <param name="mlContext">The ML.NET context (cancellation, logging).</param>
    /// <param name="space">The hyperparameters and their ranges; must not be empty.</param>
    /// <param name="pipeline">Builds the pipeline of one trial; read values with <see cref="SweepParameters.Get{T}"/>. A factory that throws fails only that trial.</param>
    /// <param name="options">Task, metric, tuner, pruner, limits, journal; null takes the defaults (multiclass micro-accuracy, TPE + ASHA, 20 trials).</param>
    /// <exception cref="ArgumentException">The space is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is invalid (e.g. a metric of another task, MaxTrials ≤ 0 without a TimeBudget); the message names it.</exception>
    /// <remarks>See docs/sweeps.md and the "sweep" sample in samples/MLExtensions.Samples.</remarks>
    public static HyperparameterSweep Sweep(this MLContext mlContext, SearchSpace space, Func<SweepParameters, IEstimator<ITransformer>> pipeline, SweepOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new HyperparameterSweep(mlContext, space, pipeline, options ?? new SweepOptions());
    }
}
