using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>A training loss: network outputs and a batch in, scalar out. Chosen by the options, not by the model.</summary>
public interface ILoss
{
    /// <summary>The mean loss over the batch.</summary>
    Tensor Compute(Tensor output, Batch batch);
}

/// <summary>Cross-entropy on logits against class-index targets, with optional label smoothing.</summary>
/// <param name="LabelSmoothing">Smoothing in [0, 1): the target puts 1 − s + s/K on the true class and s/K elsewhere.</param>
public sealed record CrossEntropyLoss(double LabelSmoothing = 0) : ILoss
{
    /// <inheritdoc />
    public Tensor Compute(Tensor output, Batch batch) =>
        nn.functional.cross_entropy(output, batch.Targets[0], null, -100, nn.Reduction.Mean, LabelSmoothing);
}

/// <summary>Logistic loss on a single logit per row against 0/1 targets.</summary>
public sealed record LogisticLoss : ILoss
{
    /// <inheritdoc />
    public Tensor Compute(Tensor output, Batch batch) =>
        nn.functional.binary_cross_entropy_with_logits(output.reshape(-1), batch.Targets[0], null, nn.Reduction.Mean, null);
}

/// <summary>The regression losses.</summary>
public enum RegressionLossKind
{
    /// <summary>Mean squared error.</summary>
    MeanSquaredError,

    /// <summary>Mean absolute error (L1); robust to outliers, slower to converge.</summary>
    MeanAbsoluteError,

    /// <summary>Huber: squared below <see cref="RegressionLoss.HuberDelta"/>, linear above.</summary>
    Huber,
}

/// <summary>A regression loss on one output per row.</summary>
/// <param name="Kind">Which loss.</param>
/// <param name="HuberDelta">Threshold of the Huber loss, &gt; 0.</param>
public sealed record RegressionLoss(RegressionLossKind Kind = RegressionLossKind.MeanSquaredError, double HuberDelta = 1.0) : ILoss
{
    /// <inheritdoc />
    public Tensor Compute(Tensor output, Batch batch)
    {
        var prediction = output.reshape(-1);
        var target = batch.Targets[0];
        return Kind switch
        {
            RegressionLossKind.MeanAbsoluteError => nn.functional.l1_loss(prediction, target, nn.Reduction.Mean),
            RegressionLossKind.Huber => nn.functional.huber_loss(prediction, target, HuberDelta, nn.Reduction.Mean),
            _ => nn.functional.mse_loss(prediction, target, nn.Reduction.Mean),
        };
    }
}
