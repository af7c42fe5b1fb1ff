using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Builds TorchSharp optimizers from <see cref="OptimizerOptions"/> and parameter groups.</summary>
internal static class OptimizerFactory
{
    public static OptimizerHelper Create(IReadOnlyList<ParameterGroup> groups, OptimizerOptions o)
    {
        if (groups.Count == 0 || groups.All(g => g.Parameters.Count == 0))
            throw new InvalidOperationException("The network has no trainable parameters (everything is frozen).");
        double lr = o.LearningRate;
        return o.Kind switch
        {
            OptimizerKind.Sgd => optim.SGD(
                groups.Select(g => new SGD.ParamGroup(g.Parameters, lr * g.LearningRateFactor, o.Momentum, 0, o.WeightDecay, o.Nesterov, false)),
                lr, o.Momentum, 0, o.WeightDecay, o.Nesterov, false),
            OptimizerKind.Adam => optim.Adam(
                groups.Select(g => new Adam.ParamGroup(g.Parameters, lr * g.LearningRateFactor, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, false, false)),
                lr, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, false, false),
            OptimizerKind.AdamW => optim.AdamW(
                groups.Select(g => new AdamW.ParamGroup(g.Parameters, lr * g.LearningRateFactor, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, false, false)),
                lr, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, false, false),
            _ => throw new ArgumentOutOfRangeException("Optimizer.Kind", o.Kind, "Unknown optimizer."),
        };
    }
}
