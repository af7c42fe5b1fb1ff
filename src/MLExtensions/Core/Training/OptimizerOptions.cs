namespace MLExtensions.Core;

/// <summary>The optimization algorithm that updates the network's weights.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.</summary>
    Sgd,

    /// <summary>Adam; <see cref="OptimizerOptions.WeightDecay"/> is added to the gradient (L2 penalty).</summary>
    Adam,

    /// <summary>AdamW: Adam with weight decay decoupled from the gradient update.</summary>
    AdamW,
}

/// <summary>Settings of the optimizer. Shared by every trainer in the library.</summary>
public sealed class OptimizerOptions
{
    /// <summary>The algorithm. Default <see cref="OptimizerKind.AdamW"/>.</summary>
    public OptimizerKind Kind { get; set; } = OptimizerKind.AdamW;

    /// <summary>Peak learning rate, &gt; 0. The schedule scales it per step. Default 0.001.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Weight decay, ≥ 0 (L2 penalty for SGD/Adam, decoupled for AdamW). Default 0.0001.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>SGD momentum in [0, 1). Ignored by Adam/AdamW. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Use Nesterov momentum with SGD. Default false.</summary>
    public bool Nesterov { get; set; }

    /// <summary>Adam's first-moment decay in [0, 1). Default 0.9.</summary>
    public double Beta1 { get; set; } = 0.9;

    /// <summary>Adam's second-moment decay in [0, 1). Default 0.999.</summary>
    public double Beta2 { get; set; } = 0.999;

    /// <summary>Adam's numerical-stability term, &gt; 0. Default 1e-8.</summary>
    public double Epsilon { get; set; } = 1e-8;

    /// <summary>A copy with another peak learning rate and every other setting the same (for one phase of a training).</summary>
    internal OptimizerOptions WithLearningRate(double learningRate)
    {
        var copy = (OptimizerOptions)MemberwiseClone();
        copy.LearningRate = learningRate;
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        Check.Positive(LearningRate, "Optimizer.LearningRate");
        Check.InRange(WeightDecay, 0, double.MaxValue, "Optimizer.WeightDecay", "≥ 0");
        Check.InRange(Momentum, 0, 0.999999, "Optimizer.Momentum", "in [0, 1)");
        Check.InRange(Beta1, 0, 0.999999, "Optimizer.Beta1", "in [0, 1)");
        Check.InRange(Beta2, 0, 0.999999, "Optimizer.Beta2", "in [0, 1)");
        Check.Positive(Epsilon, "Optimizer.Epsilon");
        if (Nesterov && (Kind != OptimizerKind.Sgd || Momentum == 0))
            throw new ArgumentOutOfRangeException("Optimizer.Nesterov", Nesterov, "Nesterov momentum needs Kind = Sgd and Momentum > 0.");
    }
}
