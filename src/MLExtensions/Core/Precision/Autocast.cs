using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// The library's autocast (TorchSharp 0.107 has none): while a scope from <see cref="Enter"/> is open on the current
/// thread, the <see cref="Linear"/> and <see cref="Conv2d"/> modules of a network prepared with <see cref="Attach"/>
/// and the attention products that call <see cref="MatMul"/> compute in the scope's low precision; everything else
/// (softmax, LayerNorm, BatchNorm, activations, losses, reductions) keeps float32 — the split of PyTorch's CPU
/// autocast lists.
/// </summary>
/// <remarks>
/// One mechanism for every network: <see cref="Attach"/> adds forward hooks to the network's own Linear and Conv2d
/// modules (TorchSharp's classes are sealed and the exporters, quantizers and weight loaders rely on those types, so
/// they are not replaced). The pre-hook keeps the float32 input aside and hands the module an empty batch (zero rows
/// cost nothing); the post-hook returns the real product computed as <c>op(x.to(low), weight.to(low)).to(float32)</c>.
/// The casts are differentiable, so gradients reach the float32 master weights in float32; each product returns
/// float32, so the ops around it never see a low-precision tensor. Outside a scope the hooks do nothing.
/// </remarks>
public static class Autocast
{
    [ThreadStatic]
    private static ScalarType? _current;

    [ThreadStatic]
    private static Stack<(nn.Module Module, Tensor Input)>? _pending;

    /// <summary>The low precision of the open scope on this thread; null outside a scope.</summary>
    public static ScalarType? Current => _current;

    /// <summary>
    /// Opens a scope on the current thread in which attached modules compute in <paramref name="precision"/>
    /// (<see cref="ScalarType.BFloat16"/> or <see cref="ScalarType.Float16"/>); null opens a float32 scope. Scopes nest;
    /// disposing restores the enclosing one.
    /// </summary>
    public static IDisposable Enter(ScalarType? precision)
    {
        if (precision is ScalarType t && t != ScalarType.BFloat16 && t != ScalarType.Float16)
            throw new ArgumentOutOfRangeException(nameof(precision), t, $"Autocast computes in BFloat16 or Float16; found {t}.");
        var scope = new Scope(_current);
        _current = precision;
        return scope;
    }

    /// <summary>
    /// Adds the autocast hooks to every <see cref="Linear"/> and <see cref="Conv2d"/> module of <paramref name="network"/>;
    /// disposing the result removes them. Attaching twice is harmless (a module already hooked by an open attachment is skipped).
    /// </summary>
    public static IDisposable Attach(nn.Module network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var removers = new List<IDisposable>();
        foreach (var module in network.modules().Prepend(network).Distinct())
        {
            if (module is not (Linear or Conv2d) || !TryMarkHooked(module))
                continue;
            var hookable = (nn.Module<Tensor, Tensor>)module;
            var pre = hookable.register_forward_pre_hook(PreHook);
            var post = hookable.register_forward_hook(PostHook);
            removers.Add(new Removal(module, () => { pre.remove(); post.remove(); }));
        }
        return new Attachment(removers);
    }

    /// <summary>
    /// <c>a·b</c>, in the scope's low precision when one is open (result float32), else in float32. The attention of the
    /// library's encoders calls it for Q·Kᵀ and for the weights·V product.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (_current is not ScalarType low || a.dtype != ScalarType.Float32 || b.dtype != ScalarType.Float32)
            return torch.matmul(a, b);
        using var scope = torch.NewDisposeScope();
        return torch.matmul(a.to(low), b.to(low)).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    // Weak, so a model that is dropped without Dispose (hooks still on) is not kept alive by this set.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, object> Hooked = new();

    private static bool TryMarkHooked(nn.Module module) => Hooked.TryAdd(module, module);

    private static Tensor? PreHook(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        if (_current is null || input.dtype != ScalarType.Float32 || input.dim() < 2 || !Supported(module))
            return null;
        (_pending ??= new()).Push((module, input));
        return input.narrow(0, 0, 0);
    }

    private static Tensor? PostHook(nn.Module<Tensor, Tensor> module, Tensor emptyInput, Tensor emptyOutput)
    {
        if (_current is not ScalarType low || _pending is not { Count: > 0 } || !ReferenceEquals(_pending.Peek().Module, module))
            return null;
        var input = _pending.Pop().Input;
        using var scope = torch.NewDisposeScope();
        var x = input.to(low);
        var product = module switch
        {
            Linear linear => nn.functional.linear(x, linear.weight!.to(low), linear.bias?.to(low)),
            Conv2d conv => nn.functional.conv2d(x, conv.weight!.to(low), conv.bias?.to(low), conv.stride, conv.padding, conv.dilation, conv.groups),
            _ => throw new InvalidOperationException($"Autocast has no low-precision form of {module.GetType().Name}."),
        };
        return product.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Modules whose forward the post-hook reproduces exactly; others keep their float32 forward.</summary>
    private static bool Supported(nn.Module module) => module switch
    {
        Linear => true,
        // Explicit zero padding only: padding modes and "same"/"valid" strings change the forward this hook reproduces.
        Conv2d conv => conv.padding_mode == PaddingModes.Zeros && conv.padding_type is null && !conv.transposed,
        _ => false,
    };

    private sealed class Scope(ScalarType? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
                return;
            _disposed = true;
            _current = previous;
            _pending?.Clear(); // a forward that threw inside the scope may have left an input behind
        }
    }

    private sealed class Removal(nn.Module module, Action removeHooks) : IDisposable
    {
        public void Dispose()
        {
            removeHooks();
            Hooked.Remove(module);
        }
    }

    private sealed class Attachment(List<IDisposable> removers) : IDisposable
    {
        public void Dispose()
        {
            foreach (var remover in removers)
                remover.Dispose();
            removers.Clear();
        }
    }
}
