using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Reads every row once into one feature tensor and one target tensor; each epoch draws batches through a
/// seeded permutation of row indices. This is what a hand-written loop does, so it is the fast path.
/// </summary>
public sealed class InMemoryBatchSource : IBatchSource, IDisposable
{
    private readonly Tensor _features;
    private readonly Tensor[] _targets; // the label first; then task-specific targets such as a teacher's outputs

    private InMemoryBatchSource(Tensor features, Tensor[] targets, RowReadStatistics statistics)
    {
        _features = features;
        _targets = targets;
        Statistics = statistics;
    }

    /// <inheritdoc />
    public long? RowCount => _features.shape[0];

    /// <summary>What reading the rows found (rows kept, missing labels, skipped rows).</summary>
    public RowReadStatistics Statistics { get; }

    /// <summary>Reads <paramref name="data"/> through <paramref name="reader"/> into memory.</summary>
    public static InMemoryBatchSource Read(IDataView data, IRowReaderFactory reader, CancellationToken cancellation = default)
    {
        int size = reader.FeatureSize;
        var features = new List<float[]>();
        var targets = new List<float>();
        const int chunkRows = 4096;
        float[] chunk = new float[chunkRows * size];
        int inChunk = 0;
        var statistics = new RowReadStatistics();
        using (var cursor = data.GetRowCursor(reader.ActiveColumns(data.Schema)))
        {
            var read = reader.Create(cursor, withLabel: true);
            while (cursor.MoveNext())
            {
                if ((statistics.RowsSeen & 1023) == 0)
                    cancellation.ThrowIfCancellationRequested();
                statistics.RowsSeen++;
                var status = read(chunk.AsSpan(inChunk * size, size), out float target);
                if (!statistics.Count(status))
                    continue;
                targets.Add(target);
                if (++inChunk == chunkRows)
                {
                    features.Add(chunk);
                    chunk = new float[chunkRows * size];
                    inChunk = 0;
                }
            }
        }
        int rows = targets.Count;
        var all = new float[(long)rows * size];
        int offset = 0;
        foreach (var full in features)
        {
            full.CopyTo(all, offset);
            offset += full.Length;
        }
        Array.Copy(chunk, 0, all, offset, inChunk * size);
        var featureTensor = torch.tensor(all, new long[] { rows, size });
        var targetTensor = reader.Kind == PredictionTask.MulticlassClassification
            ? torch.tensor(targets.Select(t => (long)t).ToArray())
            : torch.tensor(targets.ToArray());
        return new InMemoryBatchSource(featureTensor, new[] { targetTensor }, statistics);
    }

    /// <summary>
    /// A source over rows that are already tensors (e.g. features of a frozen backbone computed once).
    /// Takes ownership of both tensors.
    /// </summary>
    public static InMemoryBatchSource FromTensors(Tensor features, params Tensor[] targets)
    {
        if (targets.Length == 0)
            throw new ArgumentException("At least one target tensor (the label) is needed.", nameof(targets));
        foreach (var t in targets)
        {
            if (features.shape[0] != t.shape[0])
                throw new ArgumentException($"Features have {features.shape[0]} rows but a target tensor has {t.shape[0]}.");
        }
        long rows = features.shape[0];
        return new InMemoryBatchSource(features, targets, new RowReadStatistics { RowsSeen = rows, RowsUsed = rows });
    }

    /// <summary>
    /// Runs <paramref name="transform"/> (without gradients) over every batch of <paramref name="source"/> once and
    /// keeps the results in memory with all the targets of each batch.
    /// </summary>
    public static InMemoryBatchSource Precompute(IBatchSource source, Func<Tensor, Tensor> transform, int batchSize = 256)
    {
        var outputs = new List<Tensor>();
        var targets = new List<Tensor[]>();
        using (torch.no_grad())
        {
            foreach (var batch in source.GetBatches(0, batchSize, shuffle: false, seed: 0))
            {
                using (batch)
                {
                    outputs.Add(transform(batch.Inputs[0]).detach().cpu().DetachFromDisposeScope());
                    targets.Add(batch.Targets.Select(t => t.clone().DetachFromDisposeScope()).ToArray());
                }
            }
        }
        if (outputs.Count == 0)
            return FromTensors(torch.zeros(0, 1), torch.zeros(0, ScalarType.Int64));
        var features = torch.cat(outputs, 0);
        var joined = Enumerable.Range(0, targets[0].Length).Select(i => torch.cat(targets.Select(t => t[i]).ToList(), 0)).ToArray();
        foreach (var t in outputs.Concat(targets.SelectMany(t => t)))
            t.Dispose();
        return FromTensors(features, joined);
    }

    /// <inheritdoc />
    public IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed)
    {
        long rows = _features.shape[0];
        long[] order = Enumerable.Range(0, (int)rows).Select(i => (long)i).ToArray();
        if (shuffle)
            new Random(Seeds.Derive(seed, Seeds.Shuffle, epoch)).Shuffle(order);
        for (long start = 0; start < rows; start += batchSize)
        {
            int count = (int)Math.Min(batchSize, rows - start);
            using var index = torch.tensor(order.AsSpan((int)start, count).ToArray());
            yield return new Batch(new[] { _features.index_select(0, index) }, _targets.Select(t => t.index_select(0, index)).ToArray(), count);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _features.Dispose();
        foreach (var t in _targets)
            t.Dispose();
    }
}

/// <summary>Counts of what was found while reading training rows.</summary>
public sealed class RowReadStatistics
{
    /// <summary>Rows the cursor produced.</summary>
    public long RowsSeen { get; internal set; }

    /// <summary>Rows used.</summary>
    public long RowsUsed { get; internal set; }

    /// <summary>Rows skipped because the label was missing.</summary>
    public long MissingLabels { get; internal set; }

    /// <summary>Rows skipped because of invalid features (with <see cref="InvalidFeatureHandling.Skip"/>).</summary>
    public long InvalidRows { get; internal set; }

    /// <summary>Records a row's status; returns true when the row is used.</summary>
    internal bool Count(RowStatus status)
    {
        switch (status)
        {
            case RowStatus.Ok:
                RowsUsed++;
                return true;
            case RowStatus.MissingLabel:
                MissingLabels++;
                return false;
            default:
                InvalidRows++;
                return false;
        }
    }
}
