using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core.Distributed;

/// <summary>
/// Synchronised BatchNorm: in training mode every BatchNorm layer of the network normalises with the mean and variance of the
/// global batch (all ranks' rows) instead of its own rows, and the gradient flows back to every rank's rows through those
/// global statistics. Attached as forward hooks, so the networks of the library need no special layer.
/// </summary>
/// <remarks>
/// The hook recomputes the layer's output from its input with the global statistics (one all-reduce of 2C + 1 values per layer
/// and pass, and one in the backward pass) and corrects the running statistics the layer has just updated with its local
/// ones: with momentum m, r ← r + m (global − local) turns the local update into the global one.
/// </remarks>
internal sealed class SyncBatchNorm : IDisposable
{
    private readonly List<Action> _removers = new();

    private SyncBatchNorm()
    {
    }

    /// <summary>Hooks every BatchNorm layer of <paramref name="network"/>.</summary>
    public static SyncBatchNorm Attach(nn.Module network, MpiCommunicator communicator)
    {
        var result = new SyncBatchNorm();
        foreach (var module in network.modules().OfType<BatchNorm>())
        {
            if (module.momentum is null)
                throw new NotSupportedException("DataParallel.SyncBatchNorm needs BatchNorm layers with a momentum (a cumulative average, momentum null, is not supported).");
            var layer = module;
            var hook = layer.register_forward_hook((_, input, output) => layer.training ? Normalize(layer, input, output, communicator) : output);
            result._removers.Add(hook.remove);
        }
        return result;
    }

    private static Tensor Normalize(BatchNorm layer, Tensor x, Tensor localOutput, MpiCommunicator communicator)
    {
        localOutput.Dispose();
        long channels = x.shape[1];
        long[] dims = Enumerable.Range(0, (int)x.dim()).Where(d => d != 1).Select(d => (long)d).ToArray();
        long[] shape = Enumerable.Range(0, (int)x.dim()).Select(d => d == 1 ? channels : 1L).ToArray();
        double localCount = x.numel() / channels;
        var sum = x.sum(dims);
        var squares = x.square().sum(dims);
        using var count = torch.full(new long[] { 1 }, localCount, dtype: x.dtype, device: x.device);
        // Scalars are held in variables until the end of the method (TorchSharp's implicit-Scalar GC race, see RootedScalars).
        using Scalar zero = 0.0.ToScalar(), eps = layer.eps.ToScalar(), momentum = layer.momentum!.Value.ToScalar();
        using Scalar one = 1.0.ToScalar(), minusOne = (-1.0).ToScalar(), localRows = localCount.ToScalar();
        var global = GlobalSum.Across(torch.cat(new[] { sum, squares, count }), communicator);
        var total = global[-1];
        var mean = global.narrow(0, 0, channels) / total;
        var variance = (global.narrow(0, channels, channels) / total - mean.square()).clamp_min(zero);
        var y = (x - mean.view(shape)) * variance.add(eps, one).rsqrt().view(shape);
        if (layer.weight is { } weight)
            y = y * weight.view(shape);
        if (layer.bias is { } bias)
            y = y + bias.view(shape);
        if (layer.track_running_stats && layer.running_mean is { } runningMean && layer.running_var is { } runningVar)
        {
            using var noGrad = torch.no_grad();
            double n = total.item<float>();
            using Scalar localCorrection = (localCount / Math.Max(1, localCount - 1)).ToScalar(), globalCorrection = (n / Math.Max(1, n - 1)).ToScalar();
            using var localMean = sum.div(localRows);
            using var localVariance = squares.div(localRows).add(localMean.square(), minusOne).mul(localCorrection);
            using var globalVariance = variance.detach().mul(globalCorrection);
            runningMean.add_(mean.detach().add(localMean, minusOne), momentum);
            runningVar.add_(globalVariance.add(localVariance, minusOne), momentum);
        }
        return y;
    }

    public void Dispose()
    {
        foreach (var remove in _removers)
            remove();
    }

    /// <summary>All-reduce (sum) as an autograd function: the gradient of a sum over ranks is the sum of the ranks' gradients.</summary>
    private sealed class GlobalSum : autograd.SingleTensorFunction<GlobalSum>
    {
        public override string Name => nameof(GlobalSum);

        public static Tensor Across(Tensor local, MpiCommunicator communicator) => apply(local, communicator);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var communicator = (MpiCommunicator)vars[1];
            ctx.save_data("communicator", communicator);
            return Sum((Tensor)vars[0], communicator);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
            new() { Sum(grad, (MpiCommunicator)ctx.get_data("communicator")), null! }; // no gradient for the communicator

        private static Tensor Sum(Tensor local, MpiCommunicator communicator)
        {
            var values = local.detach().to(ScalarType.Float32, CPU).contiguous().clone();
            communicator.SumInPlace(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(values.bytes));
            return values.to(local.dtype, local.device);
        }
    }
}
