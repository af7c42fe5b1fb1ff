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
    /// <param name="teacher">The teacher.</param>
    /// <param name="data">The rows to score.</param>
    /// <param name="channel">Progress messages.</param>
    /// <param name="cancellation">Stops the pass.</param>
    /// <param name="parallel">
    /// In data-parallel training, the job's communicator: each rank scores only every Size-th row (from its rank on) and the
    /// ranks' outputs are added together (the other ranks contribute zeros), so every rank ends with all outputs for 1/Size of
    /// the teacher's work.
    /// </param>
    public static TeacherOutputs Compute(TeacherBinding teacher, IDataView data, IChannel channel, CancellationToken cancellation,
        Core.Distributed.MpiCommunicator? parallel = null)
    {
        var values = new List<float>();
        var buffer = new float[teacher.OutputCount];
        long rows = 0;
        long position = -1;
        bool Mine() => parallel is null || ++position % parallel.Size == parallel.Rank;
        void Skip()
        {
            Array.Clear(buffer);
            values.AddRange(buffer);
            rows++;
        }
        float[] Gathered()
        {
            var array = values.ToArray();
            parallel?.SumInPlace(array);
            return array;
        }
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
            var window = new List<Tensor?>();
            int windowSize = !network.CanPadRowInputs ? TeacherBatchSize : TeacherBatchSize * SortWindowBatches;
            int inWindow = 0;
            while (cursor.MoveNext())
            {
                // Another rank's row stays a null placeholder, so the window keeps row order.
                window.Add(Mine() ? input().DetachFromDisposeScope() : null);
                if (window[^1] is not null && ++inWindow == windowSize)
                {
                    ScoreWindow(network, window, buffer, Add, Skip);
                    inWindow = 0;
                }
            }
            ScoreWindow(network, window, buffer, Add, Skip);
            return new TeacherOutputs(Gathered(), teacher.OutputCount, $"logits of the teacher's {network.GetType().Name}");
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
                    if (!Mine())
                    {
                        Skip();
                        continue;
                    }
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
                    if (!Mine())
                    {
                        Skip();
                        continue;
                    }
                    get(ref value);
                    buffer[0] = probability is null ? value : LogOdds(value);
                    Add();
                }
            }
        }
        var array = Gathered();
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

    /// <summary>
    /// Scores a window of row inputs in batches, calls <paramref name="add"/> for each row in order (<paramref name="skip"/>
    /// for another rank's row, a null entry), and empties the window.
    /// </summary>
    private static void ScoreWindow(NetworkTransformerBase network, List<Tensor?> window, float[] buffer, Action add, Action skip)
    {
        if (window.Count == 0)
            return;
        int k = buffer.Length;
        var outputs = new float[window.Count * k];
        bool pads = network.CanPadRowInputs;
        var order = Enumerable.Range(0, window.Count).Where(i => window[i] is not null).ToArray();
        if (pads)
            order = order.OrderBy(i => window[i]!.numel()).ToArray(); // stable: equal lengths keep their order
        int start = 0;
        while (start < order.Length)
        {
            // A batch: up to TeacherBatchSize rows; without padding, only rows of the first row's shape.
            int end = start + 1;
            while (end < order.Length && end - start < TeacherBatchSize && (pads || window[order[end]]!.shape.SequenceEqual(window[order[start]]!.shape)))
                end++;
            var rows = order[start..end].Select(i => window[i]!).ToList();
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
            if (window[row] is null)
            {
                skip();
                continue;
            }
            Array.Copy(outputs, row * k, buffer, 0, k);
            add();
        }
        foreach (var t in window)
            t?.Dispose();
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
