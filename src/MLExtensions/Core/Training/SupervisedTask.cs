using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// The common training task: one input tensor through a module, a loss from the options, and the standard
/// validation metric of the prediction kind. Tabular and vision trainers use it as is; a user can train any
/// <c>Module&lt;Tensor, Tensor&gt;</c> with it.
/// </summary>
public class SupervisedTask : ITrainingTask
{
    private readonly nn.Module<Tensor, Tensor> _network;
    private readonly ILoss _loss;
    private readonly PredictionTask _kind;

    /// <summary>Creates the task.</summary>
    public SupervisedTask(nn.Module<Tensor, Tensor> network, ILoss loss, PredictionTask kind)
    {
        _network = network;
        _loss = loss;
        _kind = kind;
    }

    /// <inheritdoc />
    public nn.Module Network => _network;

    /// <inheritdoc />
    public virtual Tensor Forward(Batch batch) => _network.call(batch.Inputs[0]);

    /// <inheritdoc />
    public virtual Tensor ComputeLoss(Tensor output, Batch batch) => _loss.Compute(output, batch);

    /// <inheritdoc />
    public virtual IValidationMetric CreateValidationMetric() => _kind switch
    {
        PredictionTask.Regression => new RootMeanSquaredErrorMetric(),
        PredictionTask.BinaryClassification => new BinaryAccuracyMetric(),
        _ => new MulticlassAccuracyMetric(),
    };

    /// <inheritdoc />
    public virtual IReadOnlyList<ParameterGroup> ParameterGroups() =>
        new[] { new ParameterGroup(_network.parameters().Where(p => p.requires_grad).ToList()) };
}
