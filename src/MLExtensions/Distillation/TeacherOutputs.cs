using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>
/// The teacher's outputs for every row of the training data, computed once in one streaming pass (one row at a time, so the
/// teacher never holds the data set) and kept as K floats per row. They are logits: a network of this library gives its raw
/// outputs; any other classifier gives log-probabilities (equal to logits up to a per-row constant, which softmax ignores) or,
/// for a binary classifier, the log-odds of its probability.
/// </summary>
internal sealed class TeacherOutputs
{
    /// <summary>Rows per teacher forward pass when the teacher is a network of this library.</summary>
    private const int TeacherBatchSize = 64;

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
                channel.Trace(MessageSensitivity.None, "Teacher scored {0} rows.", rows);
            }
        }

        if (teacher.Network is { } network)
        {
            var view = teacher.Upstream.Aggregate(data, (v, t) => t.Transform(v));
            using var cursor = view.GetRowCursor(network.NetworkInputColumns.Select(n => view.Schema[n]));
            var input = network.CreateNetworkInput(cursor);
            // Rows whose inputs have the same shape (images, feature vectors) go through the network together: one forward
            // pass per batch instead of per row. Text rows differ in length and mostly go one at a time.
            var pending = new List<TorchSharp.torch.Tensor>();
            void Flush()
            {
                if (pending.Count == 0)
                    return;
                using (TorchSharp.torch.no_grad())
                using (var scope = TorchSharp.torch.NewDisposeScope())
                {
                    var logits = network.Network.call(TorchSharp.torch.cat(pending, 0)).contiguous();
                    var all = logits.data<float>().ToArray();
                    for (int row = 0; row < pending.Count; row++)
                    {
                        Array.Copy(all, row * buffer.Length, buffer, 0, buffer.Length);
                        Add();
                    }
                }
                foreach (var t in pending)
                    t.Dispose();
                pending.Clear();
            }
            while (cursor.MoveNext())
            {
                var x = input().DetachFromDisposeScope();
                if (pending.Count > 0 && (pending.Count == TeacherBatchSize || !pending[0].shape.SequenceEqual(x.shape)))
                    Flush();
                pending.Add(x);
            }
            Flush();
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
