using Microsoft.ML;
using Microsoft.ML.Data;
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
    private readonly float[]? _teacher; // rows × teacher outputs, when distilling
    private readonly PredictionTask _task;
    private readonly bool _bucket;
    private int _padId;

    private TokenBatchSource(List<TokenizedText> rows, float[] targets, float[]? teacher, PredictionTask task, bool bucket, int padId)
    {
        _rows = rows;
        _targets = targets;
        _teacher = teacher;
        _task = task;
        _bucket = bucket;
        _padId = padId;
    }

    /// <inheritdoc />
    public long? RowCount => _rows.Count;

    /// <summary>The tokenized rows, in reading order.</summary>
    internal IReadOnlyList<TokenizedText> Rows => _rows;

    /// <summary>
    /// Renumbers rows tokenized with the full vocabulary to the ids of <paramref name="pruned"/>, a pruned copy of that
    /// tokenizer (<see cref="WordPieceTokenizer.Prune"/>), in place.
    /// </summary>
    internal void Renumber(WordPieceTokenizer pruned)
    {
        foreach (var row in _rows)
        {
            var ids = row.Ids;
            for (int i = 0; i < ids.Length; i++)
                ids[i] = pruned.ToModelId(ids[i]);
        }
        _padId = pruned.PadId;
    }

    /// <summary>Rows skipped because their label was missing.</summary>
    public long MissingLabels { get; private set; }

    /// <summary>Tokenizes every row of <paramref name="data"/> once.</summary>
    /// <param name="data">The rows.</param>
    /// <param name="columns">The text column(s).</param>
    /// <param name="label">The label.</param>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="maxLength">Longest token sequence.</param>
    /// <param name="bucketByLength">Batch rows of similar length together.</param>
    /// <param name="cancellation">Stops reading.</param>
    /// <param name="teacherColumn">
    /// When distilling: a float vector column with the teacher's outputs, read into <c>Batch.Targets[1]</c>. Rows without a
    /// label are then kept (their target is <see cref="MissingTarget"/>'s marker) because they still teach through the teacher.
    /// </param>
    public static TokenBatchSource Read(IDataView data, TextColumns columns, LabelBinding label, WordPieceTokenizer tokenizer, int maxLength,
        bool bucketByLength, CancellationToken cancellation, string? teacherColumn = null)
    {
        var rows = new List<TokenizedText>();
        var targets = new List<float>();
        var teacher = new List<float>();
        long missing = 0;
        var active = columns.ActiveColumns(data.Schema).Append(data.Schema[label.Column.Name]);
        if (teacherColumn is not null)
            active = active.Append(data.Schema[teacherColumn]);
        using (var cursor = data.GetRowCursor(active))
        {
            var tokenize = columns.CreateTokenizer(cursor, tokenizer, maxLength);
            var target = label.CreateTargetGetter(cursor);
            var getTeacher = teacherColumn is null ? null : cursor.GetGetter<VBuffer<float>>(cursor.Schema[teacherColumn]);
            VBuffer<float> teacherValues = default;
            while (cursor.MoveNext())
            {
                if ((cursor.Position & 255) == 0)
                    cancellation.ThrowIfCancellationRequested();
                float? t = target();
                if (t is null)
                {
                    missing++;
                    if (getTeacher is null)
                        continue;
                }
                rows.Add(tokenize());
                targets.Add(t ?? MissingTarget.For(label.Kind));
                if (getTeacher is not null)
                {
                    getTeacher(ref teacherValues);
                    teacher.AddRange(teacherValues.DenseValues());
                }
            }
        }
        return new TokenBatchSource(rows, targets.ToArray(), teacherColumn is null ? null : teacher.ToArray(), label.Kind, bucketByLength, tokenizer.PadId)
        {
            MissingLabels = missing,
        };
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
        if (_teacher is null)
            return new Batch(new[] { packed }, new[] { targets }, indices.Length);
        int k = _teacher.Length / _rows.Count;
        var teacher = new float[indices.Length * k];
        for (int n = 0; n < indices.Length; n++)
            Array.Copy(_teacher, (long)indices[n] * k, teacher, (long)n * k, k);
        return new Batch(new[] { packed }, new[] { targets, torch.tensor(teacher, new long[] { indices.Length, k }) }, indices.Length);
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
