using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Reads rows through ML.NET cursors every epoch, so the data set is never held in memory. Shuffling
/// uses the source's own random access when it has it (<c>CanShuffle</c>), otherwise ML.NET's pool
/// shuffler (as the built-in SGD trainers do).
/// </summary>
public sealed class StreamingBatchSource : IBatchSource
{
    /// <summary>Rows held by the pool shuffler when the source cannot shuffle itself.</summary>
    public const int ShufflePoolRows = 10_000;

    private readonly IHostEnvironment _env;
    private readonly IDataView _data;
    private readonly IRowReaderFactory _reader;
    private readonly CancellationToken _cancellation;

    /// <summary>Streams <paramref name="data"/> through <paramref name="reader"/>.</summary>
    public StreamingBatchSource(IHostEnvironment env, IDataView data, IRowReaderFactory reader, CancellationToken cancellation = default)
    {
        _env = env;
        _data = data;
        _reader = reader;
        _cancellation = cancellation;
    }

    private long? _rowCount;

    /// <inheritdoc />
    /// <remarks>Counted with one cheap pass when the source does not know it (e.g. text files).</remarks>
    public long? RowCount => _rowCount ??= _data.GetRowCount() ?? TrainingData.CountRows(_data);

    /// <summary>What the last completed pass found.</summary>
    public RowReadStatistics Statistics { get; private set; } = new();

    /// <inheritdoc />
    public IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed)
    {
        var random = shuffle ? new Random(Seeds.Derive(seed, Seeds.Shuffle, epoch)) : null;
        var source = _data;
        // ML.NET's pool shuffler silently drops columns it cannot cache (e.g. MLImage), so such sources are read
        // in their own order; shuffle them upstream or use DataCaching.Memory.
        bool cacheable = _reader.ActiveColumns(_data.Schema).All(c => c.Type is Microsoft.ML.Data.PrimitiveDataViewType or Microsoft.ML.Data.VectorDataViewType);
        if (shuffle && !_data.CanShuffle && cacheable)
        {
            var options = new RowShufflingTransformer.Options { PoolRows = ShufflePoolRows, PoolOnly = false, ForceShuffle = true, ForceShuffleSeed = random!.Next() };
            source = new RowShufflingTransformer(_env, options, _data);
        }
        int size = _reader.FeatureSize;
        bool classIndices = _reader.Kind == PredictionTask.MulticlassClassification;
        var statistics = new RowReadStatistics();
        var features = new float[batchSize * size];
        var targets = new float[batchSize];
        int filled = 0;
        using var cursor = source.GetRowCursor(_reader.ActiveColumns(source.Schema), random);
        var read = _reader.Create(cursor, withLabel: true);
        while (cursor.MoveNext())
        {
            if ((statistics.RowsSeen & 255) == 0)
                _cancellation.ThrowIfCancellationRequested();
            statistics.RowsSeen++;
            if (!statistics.Count(read(features.AsSpan(filled * size, size), out targets[filled])))
                continue;
            if (++filled == batchSize)
            {
                yield return MakeBatch(features, targets, filled, size, classIndices);
                filled = 0;
            }
        }
        if (filled > 0)
            yield return MakeBatch(features, targets, filled, size, classIndices);
        Statistics = statistics;
    }

    private static Batch MakeBatch(float[] features, float[] targets, int count, int size, bool classIndices)
    {
        var x = torch.tensor(features.AsSpan(0, count * size).ToArray(), new long[] { count, size });
        var y = classIndices
            ? torch.tensor(targets.AsSpan(0, count).ToArray().Select(t => (long)t).ToArray())
            : torch.tensor(targets.AsSpan(0, count).ToArray());
        return new Batch(new[] { x }, new[] { y }, count);
    }
}
