using MLExtensions.Core;
using MLExtensions.Vision;
using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Explainability;

/// <summary>
/// DeepLIFT's rescale rule on a network of this library, as shap's DeepExplainer applies it, without backward hooks.
/// </summary>
/// <remarks>
/// The batch holds the explained row (repeated) in its first half and the reference rows in its second half. A forward
/// hook on every nonlinearity module (ReLU, GELU, Tanh, Sigmoid, Softmax, …) replaces the first half's output f(x) by
/// f(x₀) + (x − x₀)·m with m = Δf/Δx held constant (detached): the value is unchanged, and autograd now carries the
/// multiplier m instead of f'(x). Linear layers, convolutions, batch normalisation in evaluation mode, residual additions
/// and average pooling pass multipliers unchanged, as in DeepLIFT. Max pooling gets shap's rule for it: a window's
/// output difference goes to the row's maximum when it grew and to the reference's maximum when it shrank (any kernel,
/// stride and padding). Networks made of these parts (the MLP, the sequential CNNs, ResNets, whose blocks hold their ReLU
/// as a module) get exactly the multipliers of DeepLIFT's rescale rule, so the attributions sum to f(x) − f(x₀) per
/// reference. In the BERT encoder the rule covers GELU/ReLU and the attention softmax (element-wise, as shap does);
/// the products Q·Kᵀ and attention·V and LayerNorm pass plain gradients, so completeness there is approximate.
/// Nonlinearities are reached through <see cref="nn.Module.named_modules"/> and, for image networks, their
/// <see cref="ImageNetwork.Stages"/> (the ResNet stem is a view over top-level modules). The hooks stay registered for the
/// transformer's lifetime but act only on the thread that is explaining (<see cref="Activate"/>), so scoring that shares
/// the network is not affected.
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

    /// <summary>Registers the hooks on every nonlinearity and max pooling of <paramref name="network"/>.</summary>
    /// <exception cref="NotSupportedException">An image classifier trained with test-time mirroring.</exception>
    public static DeepLiftRescale Attach(nn.Module network)
    {
        if (network is ImageClassifierNetwork { AveragesMirroredView: true })
            throw new NotSupportedException(
                "DeepLiftShap cannot explain an image classifier trained with TestTimeFlip: its mirrored second pass breaks the pairing of each row with its reference. " +
                "Use IntegratedGradients, GradientShap or KernelShap.");
        var rescale = new DeepLiftRescale();
        foreach (var module in Reachable(network))
        {
            if (module is ReLU or LeakyReLU or GELU or Tanh or Sigmoid or ELU or Softplus or SiLU or Softmax)
            {
                var hookable = (nn.Module<Tensor, Tensor>)module;
                var remover = hookable.register_forward_hook((_, input, output) => t_active == rescale ? RescaleElementwise(input, output) : null!);
                rescale._removers.Add(remover.remove);
            }
            else if (module is MaxPool2d pool)
            {
                var remover = pool.register_forward_hook((_, input, output) => t_active == rescale ? RescaleMaxPool(pool, input, output) : null!);
                rescale._removers.Add(remover.remove);
            }
        }
        return rescale;
    }

    /// <summary>Every module of <paramref name="network"/> once: the registered ones and the stages of image networks.</summary>
    private static IEnumerable<nn.Module> Reachable(nn.Module network)
    {
        var seen = new HashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<nn.Module>();
        pending.Push(network);
        while (pending.Count > 0)
        {
            var module = pending.Pop();
            if (!seen.Add(module))
                continue;
            yield return module;
            foreach (var (_, child) in module.named_children())
                pending.Push(child);
            if (module is ImageNetwork image)
            {
                foreach (var stage in image.Stages)
                    pending.Push(stage);
            }
        }
    }

    /// <summary>Turns the rule on for forward passes on this thread until the result is disposed.</summary>
    public IDisposable Activate()
    {
        t_active = this;
        // The fused attention kernel has no softmax module for the hook to reach: the explicit form is needed while explaining.
        BertEncoder.ExplicitAttentionOnThisThread = true;
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

    // shap's max-pooling rule: with Δ = y − y₀ per window, max(Δ, 0) goes to the input that is the window's maximum for x
    // and min(Δ, 0) to the one that is its maximum for x₀, each divided by that input's own difference (both multipliers
    // lie in [0, 1]). The rescaled output y₀ + m₁(x_a − x₀_a) + m₂(x_b − x₀_b) equals y and carries the multipliers back.
    private static Tensor RescaleMaxPool(MaxPool2d pool, Tensor input, Tensor output)
    {
        long half = input.shape[0] / 2;
        var x = input.narrow(0, 0, half);
        var x0 = input.narrow(0, half, half).detach();
        var y = output.narrow(0, 0, half).detach();
        var y0 = output.narrow(0, half, half);
        Tensor rowArgMax, referenceArgMax;
        using (torch.no_grad())
        {
            rowArgMax = pool.forward_with_indices(x.detach()).Item2.flatten(2);
            referenceArgMax = pool.forward_with_indices(x0).Item2.flatten(2);
        }
        Tensor At(Tensor values, Tensor indices) => values.flatten(2).gather(2, indices).view_as(y);
        var difference = y - y0.detach();
        var grew = difference.clamp_min(0);
        var shrank = difference.clamp_max(0);
        var rowDifference = At(x, rowArgMax) - At(x0, rowArgMax);
        var referenceDifference = At(x, referenceArgMax) - At(x0, referenceArgMax);
        var rescaled = y0.detach()
            + rowDifference * Multiplier(grew, rowDifference.detach())
            + referenceDifference * Multiplier(shrank, referenceDifference.detach());
        return torch.cat(new[] { rescaled, y0 }, 0);
    }

    private static Tensor Multiplier(Tensor dy, Tensor dx)
    {
        var safe = dx.abs() > Tolerance;
        return torch.where(safe, dy / torch.where(safe, dx, torch.ones_like(dx)), torch.zeros_like(dx)).detach();
    }

    private sealed class Deactivation : IDisposable
    {
        public void Dispose()
        {
            t_active = null;
            BertEncoder.ExplicitAttentionOnThisThread = false;
        }
    }
}
