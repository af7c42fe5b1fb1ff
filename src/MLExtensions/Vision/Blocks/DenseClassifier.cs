using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>Where a dense classifier puts its dropout layers; the two orders torchvision uses.</summary>
internal enum DropoutPlacement
{
    /// <summary>Dropout → Linear → ReLU per hidden layer (torchvision's AlexNet).</summary>
    BeforeLinear,

    /// <summary>Linear → ReLU → Dropout per hidden layer (torchvision's VGG).</summary>
    AfterActivation,
}

/// <summary>
/// Builds the dense part of a CNN as a <see cref="Sequential"/> whose children are numbered like torchvision's
/// (<c>0</c>, <c>1</c>, …), so that with two hidden layers the final linear layer is child <c>6</c>.
/// </summary>
internal static class DenseClassifier
{
    /// <summary>Hidden layers of the given widths with ReLU and dropout, then a linear layer to <paramref name="classes"/>.</summary>
    /// <remarks>
    /// A dropout layer is present even at rate 0 (it is then the identity), so the numbering of the linear
    /// layers, and with it the state-dict keys, does not depend on the rate.
    /// </remarks>
    public static Sequential Build(long inputs, IReadOnlyList<long> hidden, int classes, double dropout, DropoutPlacement placement, Generator generator)
    {
        var layers = new List<nn.Module<Tensor, Tensor>>();
        long width = inputs;
        foreach (long next in hidden)
        {
            if (placement == DropoutPlacement.BeforeLinear)
                layers.Add(new SeededDropout(dropout, generator));
            layers.Add(nn.Linear(width, next));
            layers.Add(nn.ReLU());
            if (placement == DropoutPlacement.AfterActivation)
                layers.Add(new SeededDropout(dropout, generator));
            width = next;
        }
        layers.Add(nn.Linear(width, classes));
        return nn.Sequential(layers);
    }
}
