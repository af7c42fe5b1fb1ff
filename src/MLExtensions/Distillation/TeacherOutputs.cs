using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// The teacher's outputs for every row of the training data, computed once in one streaming pass (a window of rows at a time,
/// so the teacher never holds the data set) and kept as K floats per row. They are logits: a network of this library gives its raw
/// outputs; any other classifier gives log-probabilities (equal to logits up to a per-row constant, which softmax ignores) or,
/// for a binary classifier, the log-odds of its probability.
/// </summary>
internal sealed class TeacherOutputs
{
    /// <summary>Rows per teacher forward pass when the teacher is a network of this library.</summary>
    private const int TeacherBatchSize = 64;

    /// <summary>Batches per window within which paddable rows (texts) are sorted by length.</summary>
    private const int SortWindowBatches = 16;

    private readonly float[] _values;

    private TeacherOutputs(float[] values, int count, string source)
    {
        _values = values;
        Count = count;
        Rows = values.Length / count;
        Source = source;
    }

    /// <summary>Values per row: K for multiclass, 1 for binary.</summary>
    public int Count { get; }

    /// <summary>Rows scored.</summary>
    public long Rows { get; }

    /// <summary>What the values are, for the log (e.g. "logits of ImageClassifierTransformer").</summary>
    public string Source { get; }

    /// <summary>The outputs of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<float> Row(long row) => _values.AsSpan(checked((int)(row * Count)), Count);

    /// <summary>Runs the teacher over <paramref name="data"/> once.</summary>
    public static TeacherOutputs Compute(TeacherBinding teacher, IDataView data, IChannel channel, CancellationToken cancellation)
    {
        var values = new List<float>();
        var buffer = new float[teacher.OutputCount];
        long rows = 0;
        void Add()
        {
            teacher.Reorder(buffer);
            values.AddRange(buffer);
            if ((++rows & 4095) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
                channel.Info(MessageSensitivity.None, "Teacher scored {0} rows.", rows);
            }
        }

        if (teacher.Network is { } network)
        {
            var view = teacher.Upstream.Aggregate(data, (v, t) => t.Transform(v));
            using var cursor = view.GetRowCursor(network.NetworkInputColumns.Select(n => view.Schema[n]));
            var input = network.CreateNetworkInput(cursor);
            // Rows go through the network in batches, not one by one: rows of one shape (images, feature vectors) as they come;
            // rows a network can pad (texts of different lengths) are first sorted by length within a window of rows, so a
            // batch holds texts of similar length and little padding, and their outputs are put back in row order.
            var window = new List<Tensor>();
            int windowSize = !network.CanPadRowInputs ? TeacherBatchSize : TeacherBatchSize * SortWindowBatches;
            while (cursor.MoveNext())
            {
                window.Add(input().DetachFromDisposeScope());
                if (window.Count == windowSize)
                    ScoreWindow(network, window, buffer, Add);
            }
            ScoreWindow(network, window, buffer, Add);
            return new TeacherOutputs(values.ToArray(), teacher.OutputCount, $"logits of the teacher's {network.GetType().Name}");
        }

        var scored = teacher.Transformer.Transform(data);
        var score = scored.Schema[teacher.ScoreColumn];
        var probability = teacher.ProbabilityColumn is { } p ? scored.Schema[p] : (DataViewSchema.Column?)null;
        using (var cursor = scored.GetRowCursor(probability is null ? new[] { score } : new[] { score, probability.Value }))
        {
            if (teacher.Kind == PredictionTask.MulticlassClassification)
            {
                var get = cursor.GetGetter<VBuffer<float>>(score);
                VBuffer<float> scores = default;
                while (cursor.MoveNext())
                {
                    get(ref scores);
                    scores.CopyTo(buffer);
                    Add();
                }
            }
            else
            {
                var get = cursor.GetGetter<float>(probability ?? score);
                float value = 0;
                while (cursor.MoveNext())
                {
                    get(ref value);
                    buffer[0] = probability is null ? value : LogOdds(value);
                    Add();
                }
            }
        }
        var array = values.ToArray();
        if (teacher.Kind == PredictionTask.MulticlassClassification)
        {
            if (AreProbabilities(array, teacher.OutputCount))
            {
                for (int i = 0; i < array.Length; i++)
                    array[i] = MathF.Log(MathF.Max(array[i], 1e-30f));
                return new TeacherOutputs(array, teacher.OutputCount, $"log-probabilities from the teacher's '{teacher.ScoreColumn}' column");
            }
            channel.Warning(MessageSensitivity.None,
                "The teacher's '{0}' values are not probabilities (negative, or rows not summing to 1); they are used as logits.", teacher.ScoreColumn);
            return new TeacherOutputs(array, teacher.OutputCount, $"the teacher's '{teacher.ScoreColumn}' values as logits");
        }
        return new TeacherOutputs(array, 1, probability is null
            ? $"the teacher's '{teacher.ScoreColumn}' as the logit"
            : $"log-odds of the teacher's '{teacher.ProbabilityColumn}'");
    }

    /// <summary>Scores a window of row inputs in batches, calls <paramref name="add"/> for each row in order, and empties the window.</summary>
    private static void ScoreWindow(NetworkTransformerBase network, List<Tensor> window, float[] buffer, Action add)
    {
        if (window.Count == 0)
            return;
        int k = buffer.Length;
        var outputs = new float[window.Count * k];
        bool pads = network.CanPadRowInputs;
        var order = Enumerable.Range(0, window.Count).ToArray();
        if (pads)
            order = order.OrderBy(i => window[i].numel()).ToArray(); // stable: equal lengths keep their order
        int start = 0;
        while (start < order.Length)
        {
            // A batch: up to TeacherBatchSize rows; without padding, only rows of the first row's shape.
            int end = start + 1;
            while (end < order.Length && end - start < TeacherBatchSize && (pads || window[order[end]].shape.SequenceEqual(window[order[start]].shape)))
                end++;
            var rows = order[start..end].Select(i => window[i]).ToList();
            using (no_grad())
            using (NewDisposeScope())
            {
                var batch = rows.Count == 1 ? rows[0] : pads ? network.PadRowInputs(rows) : cat(rows, 0);
                using var precision = network.EnterScoringPrecision();
                var logits = network.Network.call(batch).contiguous().data<float>().ToArray();
                for (int r = 0; r < rows.Count; r++)
                    Array.Copy(logits, r * k, outputs, order[start + r] * k, k);
            }
            start = end;
        }
        for (int row = 0; row < window.Count; row++)
        {
            Array.Copy(outputs, row * k, buffer, 0, k);
            add();
        }
        foreach (var t in window)
            t.Dispose();
        window.Clear();
    }

    private static float LogOdds(float p)
    {
        float clamped = Math.Clamp(p, 1e-7f, 1 - 1e-7f);
        return MathF.Log(clamped) - MathF.Log(1 - clamped);
    }

    private static bool AreProbabilities(float[] values, int k)
    {
        for (int row = 0; row < values.Length; row += k)
        {
            double sum = 0;
            for (int i = row; i < row + k; i++)
            {
                if (!(values[i] >= 0))
                    return false;
                sum += values[i];
            }
            if (Math.Abs(sum - 1) > 1e-3)
                return false;
        }
        return true;
    }
}
