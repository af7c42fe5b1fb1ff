using Microsoft.ML;
using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// Tokenized rows held in memory (token ids are small), batched with dynamic padding: each batch is padded only to
/// its own longest row. With length bucketing, rows of similar length are batched together (shuffle, sort within
/// windows of 50 batches, shuffle the batches), so short texts do not pay for long ones.
/// </summary>
/// <remarks>Batch input: one int64 tensor [N, 3, L] packing token ids, attention mask and token types.</remarks>
public sealed class TokenBatchSource : IBatchSource
{
    private const int BucketWindowBatches = 50;

    private readonly List<TokenizedText> _rows;
    private readonly float[] _targets;
    private readonly PredictionTask _task;
    private readonly bool _bucket;
    private readonly int _padId;

    private TokenBatchSource(List<TokenizedText> rows, float[] targets, PredictionTask task, bool bucket, int padId)
    {
        _rows = rows;
        _targets = targets;
        _task = task;
        _bucket = bucket;
        _padId = padId;
    }

    /// <inheritdoc />
    public long? RowCount => _rows.Count;

    /// <summary>Rows skipped because their label was missing.</summary>
    public long MissingLabels { get; private set; }

    /// <summary>Tokenizes every row of <paramref name="data"/> once.</summary>
    public static TokenBatchSource Read(IDataView data, TextColumns columns, LabelBinding label, WordPieceTokenizer tokenizer, int maxLength,
        bool bucketByLength, CancellationToken cancellation)
    {
        var rows = new List<TokenizedText>();
        var targets = new List<float>();
        long missing = 0;
        using (var cursor = data.GetRowCursor(columns.ActiveColumns(data.Schema).Append(data.Schema[label.Column.Name])))
        {
            var tokenize = columns.CreateTokenizer(cursor, tokenizer, maxLength);
            var target = label.CreateTargetGetter(cursor);
            while (cursor.MoveNext())
            {
                if ((cursor.Position & 255) == 0)
                    cancellation.ThrowIfCancellationRequested();
                if (target() is not float t)
                {
                    missing++;
                    continue;
                }
                rows.Add(tokenize());
                targets.Add(t);
            }
        }
        return new TokenBatchSource(rows, targets.ToArray(), label.Kind, bucketByLength, tokenizer.PadId) { MissingLabels = missing };
    }

    /// <inheritdoc />
    public IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed)
    {
        var order = Enumerable.Range(0, _rows.Count).ToArray();
        var random = shuffle ? new Random(Seeds.Derive(seed, Seeds.Shuffle, epoch)) : null;
        random?.Shuffle(order);
        var batches = new List<int[]>();
        if (_bucket)
        {
            int window = batchSize * BucketWindowBatches;
            for (int start = 0; start < order.Length; start += window)
            {
                var chunk = order.Skip(start).Take(window).OrderBy(i => _rows[i].Length).ToArray();
                for (int b = 0; b < chunk.Length; b += batchSize)
                    batches.Add(chunk.Skip(b).Take(batchSize).ToArray());
            }
            if (random is not null)
            {
                var shuffled = batches.ToArray();
                random.Shuffle(shuffled);
                batches = shuffled.ToList();
            }
        }
        else
        {
            for (int b = 0; b < order.Length; b += batchSize)
                batches.Add(order.Skip(b).Take(batchSize).ToArray());
        }
        foreach (var rows in batches)
            yield return MakeBatch(rows);
    }

    private Batch MakeBatch(int[] indices)
    {
        var rows = indices.Select(i => _rows[i]).ToList();
        var packed = Pack(rows, _padId);
        var targets = _task == PredictionTask.MulticlassClassification
            ? torch.tensor(indices.Select(i => (long)_targets[i]).ToArray())
            : torch.tensor(indices.Select(i => _targets[i]).ToArray());
        return new Batch(new[] { packed }, new[] { targets }, indices.Length);
    }

    /// <summary>Packs rows into [N, 3, L] (ids, mask, types), padded to the longest row.</summary>
    public static Tensor Pack(IReadOnlyList<TokenizedText> rows, int padId)
    {
        int length = Math.Max(1, rows.Max(r => r.Length));
        var data = new long[rows.Count * 3 * length];
        for (int n = 0; n < rows.Count; n++)
        {
            var row = rows[n];
            int ids = n * 3 * length, mask = ids + length, types = mask + length;
            for (int t = 0; t < length; t++)
            {
                bool real = t < row.Length;
                data[ids + t] = real ? row.Ids[t] : padId;
                data[mask + t] = real ? 1 : 0;
                data[types + t] = real ? row.TypeIds[t] : 0;
            }
        }
        return torch.tensor(data, new long[] { rows.Count, 3, length });
    }
}
