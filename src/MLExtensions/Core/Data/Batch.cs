using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>One batch of training or validation rows as tensors. Disposing it frees the tensors.</summary>
public sealed class Batch : IDisposable
{
    /// <summary>Creates a batch of <paramref name="count"/> rows.</summary>
    /// <param name="inputs">The network inputs, first dimension = rows.</param>
    /// <param name="targets">The targets (label first; further entries are task-specific, e.g. teacher logits).</param>
    /// <param name="count">Number of rows.</param>
    public Batch(Tensor[] inputs, Tensor[] targets, int count)
    {
        Inputs = inputs;
        Targets = targets;
        Count = count;
        GlobalCount = count;
    }

    /// <summary>The network inputs; for a single feature vector, one tensor of shape [rows, features].</summary>
    public Tensor[] Inputs { get; }

    /// <summary>The targets; <c>Targets[0]</c> is the label tensor (float for regression/binary, int64 class indices for multiclass).</summary>
    public Tensor[] Targets { get; }

    /// <summary>Number of rows in the batch.</summary>
    public int Count { get; }

    /// <summary>
    /// In data-parallel training, the rows of the global batch (all ranks) this batch is one rank's share of; otherwise
    /// <see cref="Count"/>.
    /// </summary>
    public int GlobalCount { get; internal init; }

    /// <summary>Moves every tensor to <paramref name="device"/> (no copy when already there).</summary>
    public Batch To(Device device)
    {
        if (Inputs.All(t => t.device == device) && Targets.All(t => t.device == device))
            return this;
        var moved = new Batch(Inputs.Select(t => t.to(device)).ToArray(), Targets.Select(t => t.to(device)).ToArray(), Count) { GlobalCount = GlobalCount };
        Dispose();
        return moved;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Inputs)
            t.Dispose();
        foreach (var t in Targets)
            t.Dispose();
    }
}

/// <summary>Produces the batches of one epoch. Implementations decide where rows live (memory, cursors).</summary>
public interface IBatchSource
{
    /// <summary>Number of rows, when known before reading.</summary>
    long? RowCount { get; }

    /// <summary>The batches of epoch <paramref name="epoch"/> (0-based); shuffled deterministically from <paramref name="seed"/> and the epoch when <paramref name="shuffle"/> is set.</summary>
    IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed);
}
