using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Re-initialises the weights of linear and convolution layers from a per-run <see cref="Generator"/>,
/// with the same distributions PyTorch uses by default (uniform, bound 1/√fan_in for weights and biases).
/// </summary>
/// <remarks>
/// TorchSharp's layer constructors draw from libtorch's global generator. Re-drawing from the run's own
/// generator makes a fixed seed give the same network even when other code uses random numbers meanwhile.
/// </remarks>
public static class SeededInitialization
{
    /// <summary>Re-initialises every <c>Linear</c>, <c>Conv1d</c> and <c>Conv2d</c> inside <paramref name="module"/>.</summary>
    public static void Apply(nn.Module module, Generator generator)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, child) in module.named_modules())
        {
            switch (child)
            {
                case Linear linear:
                    Reset(linear.weight!, linear.bias, generator);
                    break;
                case Conv1d conv:
                    Reset(conv.weight!, conv.bias, generator);
                    break;
                case Conv2d conv:
                    Reset(conv.weight!, conv.bias, generator);
                    break;
            }
        }
    }

    private static void Reset(Tensor weight, Tensor? bias, Generator generator)
    {
        long fanIn = weight.numel() / weight.shape[0];
        double bound = 1.0 / Math.Sqrt(fanIn);
        // Tensor.uniform_ honours the generator; nn.init.uniform_ in TorchSharp 0.107 silently ignores it.
        weight.uniform_(-bound, bound, generator);
        bias?.uniform_(-bound, bound, generator);
    }
}
