using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Explainability;

/// <summary>
/// DeepLIFT's rescale rule on a network of this library, as shap's DeepExplainer applies it, without backward hooks.
/// </summary>
/// <remarks>
/// The batch holds the explained row (repeated) in its first half and the reference rows in its second half. A forward
/// hook on every nonlinearity replaces the first half's output f(x) by f(x₀) + (x − x₀)·m with m = Δf/Δx held constant
/// (detached): the value is unchanged, and autograd now carries the multiplier m instead of f'(x). Linear layers,
/// convolutions, batch normalisation in evaluation mode and average pooling pass multipliers unchanged, as in DeepLIFT.
/// Non-overlapping max pooling gets DeepLIFT's rule for it: the output difference is assigned to the input that is the
/// window's maximum for x. So the chain rule multiplies exactly the multipliers of DeepLIFT's rescale rule, and the
/// attributions sum to f(x) − f(x₀) per reference. The hooks stay registered for the transformer's lifetime but act only on
/// the thread that is explaining (<see cref="Activate"/>), so scoring that shares the network is not affected.
/// </remarks>
internal sealed class DeepLiftRescale : IDisposable
{
    /// <summary>Below this |Δx| the multiplier is 0 (the contribution Δx·m is negligible); shap falls back to the gradient there.</summary>
    private const double Tolerance = 1e-6;

    [ThreadStatic]
    private static DeepLiftRescale? t_active;

    private readonly List<Action> _removers = new();

    private DeepLiftRescale()
    {
    }

    /// <summary>Registers the hooks on <paramref name="network"/>; throws when a nonlinearity cannot be reached by a hook.</summary>
    /// <exception cref="NotSupportedException">The network applies nonlinearities inside modules (the text encoder, ResNet blocks).</exception>
    public static DeepLiftRescale Attach(nn.Module network)
    {
        if (network is ImageClassifierNetwork { AveragesMirroredView: true })
            throw new NotSupportedException(
                "DeepLiftShap cannot explain an image classifier trained with TestTimeFlip: its mirrored second pass breaks the pairing of each row with its reference. " +
                "Use IntegratedGradients, GradientShap or KernelShap.");
        var rescale = new DeepLiftRescale();
        foreach (var (name, module) in network.named_modules())
        {
            if (module is BertEncoder or BasicBlock or Bottleneck)
            {
                rescale.Dispose();
                throw new NotSupportedException(
                    $"DeepLiftShap cannot explain this network: its module '{name}' ({module.GetType().Name}) applies nonlinearities that the rescale rule cannot reach. " +
                    "Use IntegratedGradients, GradientShap or KernelShap.");
            }
            if (module is ReLU or LeakyReLU or GELU or Tanh or Sigmoid or ELU or Softplus or SiLU)
            {
                var hookable = (nn.Module<Tensor, Tensor>)module;
                var remover = hookable.register_forward_hook((_, input, output) => t_active == rescale ? RescaleElementwise(input, output) : null!);
                rescale._removers.Add(remover.remove);
            }
            else if (module is MaxPool2d pool)
            {
                var remover = pool.register_forward_hook((_, input, output) => t_active == rescale ? RescaleMaxPool(name, input, output) : null!);
                rescale._removers.Add(remover.remove);
            }
        }
        return rescale;
    }

    /// <summary>Turns the rule on for forward passes on this thread until the result is disposed.</summary>
    public IDisposable Activate()
    {
        t_active = this;
        return new Deactivation();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var remove in _removers)
            remove();
        _removers.Clear();
    }

    private static Tensor RescaleElementwise(Tensor input, Tensor output)
    {
        long half = input.shape[0] / 2;
        var x = input.narrow(0, 0, half);
        var x0 = input.narrow(0, half, half).detach();
        var y = output.narrow(0, 0, half);
        var y0 = output.narrow(0, half, half);
        var multiplier = Multiplier(y.detach() - y0.detach(), x.detach() - x0);
        var rescaled = y0.detach() + (x - x0) * multiplier;
        return torch.cat(new[] { rescaled, y0 }, 0);
    }

    // For a window of x, the input that is its maximum carries the whole output difference: y − y₀ = (x_k − x₀_k)·m_k with
    // m_k = (y − y₀) / (x_k − x₀_k). Ties share the window's weight equally. Needs kernel = stride (sizes divide exactly).
    private static Tensor RescaleMaxPool(string name, Tensor input, Tensor output)
    {
        long height = input.shape[2], width = input.shape[3], pooledHeight = output.shape[2], pooledWidth = output.shape[3];
        if (height % pooledHeight != 0 || width % pooledWidth != 0 || height / pooledHeight != width / pooledWidth)
            throw new NotSupportedException($"DeepLiftShap supports non-overlapping max pooling only; '{name}' maps {height}×{width} to {pooledHeight}×{pooledWidth}. Use IntegratedGradients or KernelShap.");
        long k = height / pooledHeight;
        long half = input.shape[0] / 2;
        var x = input.narrow(0, 0, half);
        var x0 = input.narrow(0, half, half).detach();
        var y = output.narrow(0, 0, half).detach();
        var y0 = output.narrow(0, half, half);
        var spread = y.repeat_interleave(k, 2).repeat_interleave(k, 3);
        var isMax = x.detach().eq(spread).to_type(x.dtype);
        var share = isMax / SumPool(isMax, k).repeat_interleave(k, 2).repeat_interleave(k, 3);
        var selected = SumPool(share * x, k);
        var selectedReference = SumPool(share * x0, k).detach();
        var multiplier = Multiplier(y - y0.detach(), y - selectedReference);
        var rescaled = y0.detach() + (selected - selectedReference) * multiplier;
        return torch.cat(new[] { rescaled, y0 }, 0);
    }

    private static Tensor SumPool(Tensor x, long k) => nn.functional.avg_pool2d(x, k, k) * (k * k);

    private static Tensor Multiplier(Tensor dy, Tensor dx)
    {
        var safe = dx.abs() > Tolerance;
        return torch.where(safe, dy / torch.where(safe, dx, torch.ones_like(dx)), torch.zeros_like(dx)).detach();
    }

    private sealed class Deactivation : IDisposable
    {
        public void Dispose() => t_active = null;
    }
}
