using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core.Distributed;

/// <summary>
/// Adds the gradients of every trainable parameter over the ranks, fused into buffers ("buckets") of about
/// <see cref="DataParallelOptions.BucketSizeMegabytes"/>: one all-reduce per bucket instead of one per tensor, so a network
/// of hundreds of small tensors pays the network's latency a few times per step, not hundreds.
/// </summary>
/// <remarks>
/// Gradients are copied into a flat float32 buffer, reduced in place and copied back. A parameter without a gradient (not
/// used in this step's forward pass, or a rank with no rows in the batch) contributes zeros and receives the sum, so every
/// rank steps every parameter the same way.
/// </remarks>
internal sealed class GradientBuckets : IDisposable
{
    private readonly MpiCommunicator _communicator;
    private readonly List<(Parameter[] Parameters, Tensor Buffer)> _buckets = new();

    public GradientBuckets(MpiCommunicator communicator, IEnumerable<Parameter> parameters, double bucketMegabytes)
    {
        _communicator = communicator;
        long limit = Math.Max(1, (long)(bucketMegabytes * 1024 * 1024 / sizeof(float)));
        var current = new List<Parameter>();
        long elements = 0;
        foreach (var p in parameters)
        {
            if (p.dtype != ScalarType.Float32)
                throw new NotSupportedException($"Data-parallel training reduces float32 gradients; a trainable parameter of shape [{string.Join(", ", p.shape)}] is {p.dtype}.");
            if (current.Count > 0 && elements + p.numel() > limit)
                Close();
            current.Add(p);
            elements += p.numel();
        }
        Close();

        void Close()
        {
            if (current.Count == 0)
                return;
            _buckets.Add((current.ToArray(), torch.empty(elements, ScalarType.Float32).DetachFromDisposeScope()));
            current.Clear();
            elements = 0;
        }
    }

    /// <summary>Number of fused buffers (all-reduces per step).</summary>
    public int Count => _buckets.Count;

    /// <summary>Floats sent per step (before the all-reduce algorithm's own factor).</summary>
    public long Elements => _buckets.Sum(b => b.Buffer.numel());

    /// <summary>Wall time spent in the all-reduce calls so far.</summary>
    public TimeSpan CommunicationTime => _clock.Elapsed;

    private readonly Stopwatch _clock = new();

    /// <summary>Replaces every parameter's gradient with its sum over the ranks.</summary>
    public void SumOverRanks()
    {
        using var noGrad = torch.no_grad();
        foreach (var (parameters, buffer) in _buckets)
        {
            using (var scope = torch.NewDisposeScope())
            {
                long offset = 0;
                foreach (var p in parameters)
                {
                    long n = p.numel();
                    var slot = buffer.narrow(0, offset, n);
                    if (p.grad is { } grad)
                        slot.copy_(grad.reshape(-1));
                    else
                        slot.zero_();
                    offset += n;
                }
            }
            _clock.Start();
            _communicator.SumInPlace(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(buffer.bytes));
            _clock.Stop();
            using (var scope = torch.NewDisposeScope())
            {
                long offset = 0;
                foreach (var p in parameters)
                {
                    long n = p.numel();
                    var summed = buffer.narrow(0, offset, n).view(p.shape);
                    if (p.grad is { } grad)
                        grad.copy_(summed);
                    else
                        p.grad = summed.clone().DetachFromDisposeScope();
                    offset += n;
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (var (_, buffer) in _buckets)
            buffer.Dispose();
    }
}
