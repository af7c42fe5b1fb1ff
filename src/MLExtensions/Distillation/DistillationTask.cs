using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// Puts the distillation loss around a student's own training task: the student's forward pass (with its augmentation and
/// frozen parts) is unchanged; the loss compares its logits with the teacher's (<c>Batch.Targets[1]</c>, or an
/// <see cref="IOnlineTeacher"/> when the teacher must see the batch) and with the label, and extra terms (intermediate layers)
/// may be added by the online teacher.
/// </summary>
internal sealed class DistillationTask : ITrainingTask
{
    private readonly ITrainingTask _student;
    private readonly DistillationLoss _loss;
    private readonly IOnlineTeacher? _online;
    private readonly TeacherAccuracy _teacherAccuracy;

    public DistillationTask(ITrainingTask student, DistillationLoss loss, IOnlineTeacher? online, TeacherAccuracy teacherAccuracy)
    {
        _student = student;
        _loss = loss;
        _online = online;
        _teacherAccuracy = teacherAccuracy;
    }

    public nn.Module Network => _student.Network;

    public IEnumerable<nn.Module> PrecisionNetworks => _online is null ? new[] { Network } : _online.Networks.Prepend(Network);

    public Tensor Forward(Batch batch) =>
        _student.Forward(_online is not null && Network.training ? _online.BeforeStudent(batch) : batch);

    public Tensor ComputeLoss(Tensor output, Batch batch)
    {
        using var scope = torch.NewDisposeScope();
        var targets = batch.Targets[0];
        Tensor loss;
        if (_online is not null && Network.training)
        {
            var guidance = _online.Teach(_student, batch);
            loss = _loss.Compute(output, guidance.Logits, targets) + guidance.ExtraLoss;
        }
        else
        {
            loss = _loss.Compute(output, batch.Targets[1], targets);
        }
        return loss.MoveToOuterDisposeScope();
    }

    public IValidationMetric CreateValidationMetric() => new LabeledRowsMetric(_student.CreateValidationMetric(), _loss.Kind, _teacherAccuracy);

    public IReadOnlyList<ParameterGroup> ParameterGroups()
    {
        var groups = _student.ParameterGroups().ToList();
        if (_online?.TrainableParameters() is { Count: > 0 } extra)
            groups.Add(new ParameterGroup(extra));
        return groups;
    }

    /// <summary>The student's metric over the labeled rows; also measures the teacher's accuracy on the same rows.</summary>
    private sealed class LabeledRowsMetric : IValidationMetric
    {
        private readonly IValidationMetric _inner;
        private readonly PredictionTask _kind;
        private readonly TeacherAccuracy _teacher;
        private long _teacherCorrect;
        private long _rows;

        public LabeledRowsMetric(IValidationMetric inner, PredictionTask kind, TeacherAccuracy teacher)
        {
            _inner = inner;
            _kind = kind;
            _teacher = teacher;
        }

        public string Name => _inner.Name;

        public bool HigherIsBetter => _inner.HigherIsBetter;

        public void Update(Tensor output, Batch batch)
        {
            using var scope = torch.NewDisposeScope();
            var labeled = MissingTarget.LabeledRows(batch.Targets[0], _kind);
            var rows = labeled.nonzero().reshape(-1);
            int count = (int)rows.shape[0];
            if (count == 0)
                return;
            var targets = batch.Targets.Select(t => t.index_select(0, rows)).ToArray();
            using var labeledBatch = new Batch(Array.Empty<Tensor>(), targets, count);
            _inner.Update(output.index_select(0, rows), labeledBatch);
            if (batch.Targets.Length > 1)
            {
                var teacher = batch.Targets[1].index_select(0, rows);
                var correct = _kind == PredictionTask.MulticlassClassification
                    ? teacher.argmax(1L).eq(targets[0])
                    : teacher.reshape(-1).gt(0).eq(targets[0].gt(0.5));
                _teacherCorrect += correct.sum().item<long>();
                _rows += count;
            }
        }

        public double Compute()
        {
            if (_rows > 0)
                _teacher.Record((double)_teacherCorrect / _rows);
            return _inner.Compute();
        }

        public double[]? GetSums() => _inner.GetSums() is { } inner ? inner.Append(_teacherCorrect).Append(_rows).ToArray() : null;

        public void SetSums(ReadOnlySpan<double> sums)
        {
            _inner.SetSums(sums[..^2]);
            (_teacherCorrect, _rows) = ((long)sums[^2], (long)sums[^1]);
        }
    }
}

/// <summary>The teacher's accuracy on the student's validation rows, as last measured.</summary>
internal sealed class TeacherAccuracy
{
    public double? Value { get; private set; }

    public void Record(double value) => Value = value;
}

/// <summary>What an online teacher adds for one batch: its logits for what the student saw, and any extra loss terms.</summary>
/// <param name="Logits">Teacher logits [N, K].</param>
/// <param name="ExtraLoss">Scalar of additional weighted terms (e.g. hidden states); zero when there are none.</param>
internal sealed record TeacherGuidance(Tensor Logits, Tensor ExtraLoss);

/// <summary>A teacher that runs on each training batch (augmented inputs, intermediate layers) instead of cached outputs.</summary>
internal interface IOnlineTeacher : IDisposable
{
    /// <summary>The batch the student trains on: the original, or an augmented copy the teacher will then see too.</summary>
    Batch BeforeStudent(Batch batch);

    /// <summary>Runs the teacher (no gradients) on what <paramref name="student"/> saw in its last forward pass.</summary>
    TeacherGuidance Teach(ITrainingTask student, Batch batch);

    /// <summary>Parameters trained with the student (e.g. projections between widths).</summary>
    IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters();

    /// <summary>The teacher's networks (and trained projections), which follow the run's training precision.</summary>
    IEnumerable<nn.Module> Networks { get; }
}
