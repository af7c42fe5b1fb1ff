using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// The library's autocast (TorchSharp 0.107 has none): while a scope from <see cref="Enter"/> is open on the current
/// thread, the <see cref="Linear"/> and <see cref="Conv2d"/> modules of a network prepared with <see cref="Attach"/>
/// and the attention products that call <see cref="MatMul"/> compute in the scope's low precision, and their
/// low-precision outputs flow on to the next ops, as in PyTorch's CPU autocast. Parameters stay float32; the network's
/// output is returned in float32, so losses, metrics and scores never see a low-precision tensor.
/// </summary>
/// <remarks>
/// <para>
/// One mechanism for every network: <see cref="Attach"/> adds forward hooks to the network's own Linear and Conv2d
/// modules (TorchSharp's classes are sealed and the exporters, quantizers and weight loaders rely on those types, so
/// they are not replaced). The pre-hook keeps the input aside and hands the module an empty float32 batch (zero rows
/// cost nothing); the post-hook returns the real product <c>op(x.to(low), weight.to(low))</c>, in the low precision.
/// The casts are differentiable, so gradients reach the float32 master weights in float32. Outside a scope the hooks
/// do nothing.
/// </para>
/// <para>
/// Why the outputs stay low: casting every product back to float32 (the first version of this class) left BatchNorm,
/// LayerNorm, activations and residual adds on float32 tensors and added two casts per layer and per backward pass;
/// measured with <c>precision --part breakdown</c>, a ResNet-20 step then took five times as long as the same network
/// converted wholesale to bfloat16; keeping the outputs low brought it to that network's speed. libtorch's CPU BatchNorm and LayerNorm take a bfloat16 input with float32 weights and statistics and
/// accumulate in float32 inside the kernel; element-wise ops and reductions on bfloat16 also accumulate in float32.
/// A low-precision tensor that meets a float32 one (an attention mask, a float32 parameter) is promoted to float32 by
/// libtorch's type promotion, which is how softmax over masked attention scores stays float32. A module that cannot
/// compute in the low precision (an unsupported Conv2d padding mode) gets its input cast back to float32.
/// </para>
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
    /// Adds the autocast hooks to every <see cref="Linear"/> and <see cref="Conv2d"/> module of <paramref name="network"/>,
    /// and to <paramref name="network"/> itself, when it maps a tensor to a tensor, a hook that returns its output in float32;
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
            removers.Add(new Removal(module, () => { pre.remove(); post.remove(); WeightCopies.Remove(module); }));
        }
        if (network is nn.Module<Tensor, Tensor> root && TryMarkRoot(root))
        {
            var output = root.register_forward_hook(RootHook);
            removers.Add(new Removal(root, () => output.remove(), Roots));
        }
        return new Attachment(removers);
    }

    /// <summary>
    /// <c>a·b</c>, in the scope's low precision when one is open (the result stays in it), else as the inputs are. The
    /// attention of the library's encoders calls it for Q·Kᵀ and for the weights·V product, whose operands may arrive one
    /// in float32 (softmax over masked scores) and one in the low precision.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (_current is not ScalarType low || !IsAutocastable(a.dtype, low) || !IsAutocastable(b.dtype, low))
            return torch.matmul(a, b);
        using var scope = torch.NewDisposeScope();
        return torch.matmul(ToLow(a, low), ToLow(b, low)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="tensor"/> in float32 when it is in an autocast precision (a new tensor), else unchanged (the same
    /// object). For outputs that leave an autocast region other than through a hooked network's output.
    /// </summary>
    public static Tensor ToFloat32(Tensor tensor) =>
        tensor.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? tensor.to(ScalarType.Float32) : tensor;

    private static bool IsAutocastable(ScalarType type, ScalarType low) => type == ScalarType.Float32 || type == low;

    // A cast only when needed: a tensor already in the low precision is used as it is.
    private static Tensor ToLow(Tensor tensor, ScalarType low) => tensor.dtype == low ? tensor : tensor.to(low);

    // Weak, so a model that is dropped without Dispose (hooks still on) is not kept alive by this set.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, object> Hooked = new();

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, object> Roots = new();

    private static bool TryMarkHooked(nn.Module module) => Hooked.TryAdd(module, module);

    private static bool TryMarkRoot(nn.Module module) => Roots.TryAdd(module, module);

    private static Tensor? PreHook(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        if (_current is not ScalarType low || !IsAutocastable(input.dtype, low))
            return null;
        if (input.dim() < 2 || !Supported(module))
            return input.dtype == ScalarType.Float32 ? null : input.to(ScalarType.Float32); // the module's own float32 forward
        (_pending ??= new()).Push((module, input));
        // The module's float32 forward runs on zero rows (free); its parameters are float32, so the empty batch is too.
        var empty = input.narrow(0, 0, 0);
        return input.dtype == ScalarType.Float32 ? empty : empty.to(ScalarType.Float32);
    }

    private static Tensor? PostHook(nn.Module<Tensor, Tensor> module, Tensor emptyInput, Tensor emptyOutput)
    {
        if (_current is not ScalarType low || _pending is not { Count: > 0 } || !ReferenceEquals(_pending.Peek().Module, module))
            return null;
        var input = _pending.Pop().Input;
        using var scope = torch.NewDisposeScope();
        var x = ToLow(input, low);
        var (weight, bias) = LowParameters(module, low);
        var product = module switch
        {
            Linear => nn.functional.linear(x, weight, bias),
            Conv2d conv => nn.functional.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups),
            _ => throw new InvalidOperationException($"Autocast has no low-precision form of {module.GetType().Name}."),
        };
        return product.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The module's weight and bias in <paramref name="low"/>. With gradients on (training), a differentiable cast per
    /// forward: the graph must lead back to the float32 master weights. Without gradients (scoring, validation, a frozen
    /// teacher) the cast copies are kept and reused: casting MiniLM's 11 M Linear weights on every single-row prediction
    /// cost more than the products. The copies are dropped when the weights are replaced or <see cref="InvalidateWeightCopies"/>
    /// is called (the training loop does before every optimizer step).
    /// </summary>
    private static (Tensor Weight, Tensor? Bias) LowParameters(nn.Module module, ScalarType low)
    {
        var (weight, bias) = module switch
        {
            Linear linear => (linear.weight!, linear.bias),
            Conv2d conv => (conv.weight!, conv.bias),
            _ => throw new InvalidOperationException($"Autocast has no low-precision form of {module.GetType().Name}."),
        };
        if (torch.is_grad_enabled())
            return (weight.to(low), bias?.to(low));
        var slot = WeightCopies.GetValue(module, _ => new WeightCopySlot());
        lock (slot)
        {
            int generation = Volatile.Read(ref _weightGeneration);
            if (slot.Copy is not { } copy || copy.Generation != generation || copy.Type != low
                || !ReferenceEquals(copy.Source, weight) || !ReferenceEquals(copy.SourceBias, bias))
            {
                // The replaced copy is left to the finalizer: another thread may still be computing with it.
                copy = new WeightCopy(generation, low, weight, bias,
                    weight.detach().to(low).DetachFromDisposeScope(), bias?.detach().to(low).DetachFromDisposeScope());
                slot.Copy = copy;
            }
            // Aliases, so that the caller's dispose scope frees only the handles it was given.
            return (copy.Weight.alias(), copy.Bias?.alias());
        }
    }

    /// <summary>
    /// Drops the low-precision weight copies kept for forward passes without gradients, for every network: call after
    /// changing weights in place. The training loop calls it before each optimizer step.
    /// </summary>
    public static void InvalidateWeightCopies() => Interlocked.Increment(ref _weightGeneration);

    private static int _weightGeneration;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, WeightCopySlot> WeightCopies = new();

    private sealed class WeightCopySlot
    {
        public WeightCopy? Copy;
    }

    private sealed record WeightCopy(int Generation, ScalarType Type, Tensor Source, Tensor? SourceBias, Tensor Weight, Tensor? Bias);

    // The network's output leaves the autocast region in float32: losses, metrics and scores read float32.
    private static Tensor? RootHook(nn.Module<Tensor, Tensor> module, Tensor input, Tensor output) =>
        _current is null || output.dtype == ScalarType.Float32 || !output.is_floating_point() ? null : output.to(ScalarType.Float32);

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

    private sealed class Removal(nn.Module module, Action removeHooks, System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, object>? marks = null) : IDisposable
    {
        public void Dispose()
        {
            removeHooks();
            (marks ?? Hooked).Remove(module);
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
