using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// The "science" of a training run: the network, how a batch goes through it, the loss and the validation
/// metric. The <see cref="TrainingLoop"/> owns everything else (optimizer, schedule, validation, early
/// stopping, checkpoints, progress). Implement this to train your own TorchSharp module with the library's loop.
/// </summary>
public interface ITrainingTask
{
    /// <summary>The module being trained; its parameters are optimized and its state is checkpointed.</summary>
    nn.Module Network { get; }

    /// <summary>
    /// The networks whose Linear and Conv2d layers compute in the run's <see cref="NetworkTrainerOptions.Precision"/>:
    /// <see cref="Network"/>, plus any other network run during the loss (e.g. a distillation teacher).
    /// </summary>
    IEnumerable<nn.Module> PrecisionNetworks => new[] { Network };

    /// <summary>Runs the network on a batch and returns its raw outputs (e.g. logits).</summary>
    Tensor Forward(Batch batch);

    /// <summary>The scalar loss to minimise for a batch, given the outputs of <see cref="Forward"/>.</summary>
    Tensor ComputeLoss(Tensor output, Batch batch);

    /// <summary>A fresh accumulator for the validation metric of one epoch.</summary>
    IValidationMetric CreateValidationMetric();

    /// <summary>
    /// The parameter groups to optimize, each with a factor applied to the base learning rate (for
    /// discriminative fine-tuning). Parameters that must stay frozen are simply left out.
    /// </summary>
    IReadOnlyList<ParameterGroup> ParameterGroups();
}

/// <summary>A set of parameters trained with <see cref="LearningRateFactor"/> × the base learning rate.</summary>
/// <param name="Parameters">The parameters.</param>
/// <param name="LearningRateFactor">Multiplier of the optimizer's learning rate, &gt; 0.</param>
public sealed record ParameterGroup(IReadOnlyList<TorchSharp.Modules.Parameter> Parameters, double LearningRateFactor = 1.0);

/// <summary>Accumulates a validation metric over the batches of one epoch.</summary>
public interface IValidationMetric
{
    /// <summary>Display name, e.g. "Accuracy".</summary>
    string Name { get; }

    /// <summary>Whether larger values are better.</summary>
    bool HigherIsBetter { get; }

    /// <summary>Adds a batch's outputs.</summary>
    void Update(Tensor output, Batch batch);

    /// <summary>The metric over everything added so far.</summary>
    double Compute();

    /// <summary>
    /// The running sums the metric is computed from (e.g. correct rows and rows), so that data-parallel training can add
    /// them over the ranks that each validated a shard. Null (the default) when the metric cannot be combined that way; every
    /// rank then validates on all rows.
    /// </summary>
    double[]? GetSums() => null;

    /// <summary>Replaces the running sums with <paramref name="sums"/> (the ranks' <see cref="GetSums"/> added up).</summary>
    void SetSums(ReadOnlySpan<double> sums) => throw new NotSupportedException($"{GetType().Name} cannot be combined over ranks.");
}
