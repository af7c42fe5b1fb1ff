namespace MLExtensions.Core.Distributed;

/// <summary>
/// One rank's share of another source's batches: every rank reads the same global batches of BatchSize × ranks rows (same
/// seed, same epoch, so the same shuffle) and keeps its own contiguous slice of each. The ranks' slices of a global batch are
/// disjoint and together are exactly that batch, so the ranks train on what one process with the global batch would, and
/// every rank gets the same number of batches per epoch whatever the source (memory, streaming, token buckets, teacher
/// outputs).
/// </summary>
/// <remarks>
/// The last global batch of an epoch may be smaller than the number of ranks; a rank then gets an empty batch and takes
/// part in the step with zero gradients. Every rank reads the whole global batch: for in-memory sources that is an index
/// copy, for streaming sources each rank reads (and decodes) all rows — cache the data in memory when that matters.
/// </remarks>
internal sealed class ShardedBatchSource : IBatchSource
{
    private readonly IBatchSource _inner;
    private readonly int _rank;
    private readonly int _size;

    public ShardedBatchSource(IBatchSource inner, int rank, int size)
    {
        _inner = inner;
        _rank = rank;
        _size = size;
    }

    /// <summary>The rows of the whole data set (all ranks together): global batches are counted from it.</summary>
    public long? RowCount => _inner.RowCount;

    /// <summary>Batches of about <paramref name="batchSize"/> rows: this rank's slices of global batches of <paramref name="batchSize"/> × ranks rows.</summary>
    public IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed)
    {
        foreach (var global in _inner.GetBatches(epoch, checked(batchSize * _size), shuffle, seed))
        {
            using (global)
            {
                int count = global.Count;
                int start = (int)((long)_rank * count / _size);
                int end = (int)((long)(_rank + 1) * count / _size);
                yield return new Batch(
                    global.Inputs.Select(t => t.narrow(0, start, end - start)).ToArray(),
                    global.Targets.Select(t => t.narrow(0, start, end - start)).ToArray(),
                    end - start) { GlobalCount = count };
            }
        }
    }
}
