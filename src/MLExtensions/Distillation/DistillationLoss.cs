using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// The knowledge-distillation loss on logits:
/// <c>alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha) · cross-entropy(student, label)</c>.
/// </summary>
/// <remarks>
/// <para>The KL term is averaged over all rows of the batch, labeled or not; the cross-entropy over the labeled rows only
/// (unlabeled rows carry <see cref="MissingTarget"/>'s marker). A batch without labeled rows has a hard term of 0.</para>
/// <para>Binary models have one logit z per row; it is the two-class softmax over [0, z], so the same formula applies.</para>
/// </remarks>
public sealed class DistillationLoss
{
    /// <summary>Creates the loss.</summary>
    /// <param name="kind">Binary or multiclass classification.</param>
    /// <param name="temperature">T &gt; 0.</param>
    /// <param name="alpha">Weight of the soft term, in [0, 1].</param>
    public DistillationLoss(PredictionTask kind, double temperature, double alpha)
    {
        if (kind == PredictionTask.Regression)
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Distillation needs a classification task.");
        Check.Positive(temperature, nameof(temperature));
        Check.InRange(alpha, 0, 1, nameof(alpha), "in [0, 1]");
        Kind = kind;
        Temperature = temperature;
        Alpha = alpha;
    }

    /// <summary>The task.</summary>
    public PredictionTask Kind { get; }

    /// <summary>The temperature T.</summary>
    public double Temperature { get; }

    /// <summary>The soft term's weight.</summary>
    public double Alpha { get; }

    /// <summary>The full loss for a batch.</summary>
    /// <param name="student">Student logits [N, K] (binary: [N] or [N, 1]).</param>
    /// <param name="teacher">Teacher logits of the same shape.</param>
    /// <param name="targets">Class indices (int64) or 0/1 floats; unlabeled rows marked as by <see cref="MissingTarget"/>.</param>
    public Tensor Compute(Tensor student, Tensor teacher, Tensor targets)
    {
        using var scope = torch.NewDisposeScope();
        var total = torch.zeros(1, device: student.device).squeeze();
        if (Alpha > 0)
            total = total + Alpha * SoftTerm(student, teacher);
        if (Alpha < 1)
            total = total + (1 - Alpha) * HardTerm(student, targets);
        return total.MoveToOuterDisposeScope();
    }

    /// <summary><c>T² · KL(softmax(teacher/T) ‖ softmax(student/T))</c>, averaged over rows.</summary>
    public Tensor SoftTerm(Tensor student, Tensor teacher)
    {
        using var scope = torch.NewDisposeScope();
        var s = AsClassLogits(student) / Temperature;
        var t = AsClassLogits(teacher.to(student.device)).detach() / Temperature;
        var logP = t.log_softmax(1);
        var logQ = s.log_softmax(1);
        var kl = (logP.exp() * (logP - logQ)).sum(1L).mean();
        return (kl * (Temperature * Temperature)).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy (multiclass) or logistic loss (binary) over the labeled rows; 0 when there are none.</summary>
    public Tensor HardTerm(Tensor student, Tensor targets)
    {
        using var scope = torch.NewDisposeScope();
        using var labeled = MissingTarget.LabeledRows(targets, Kind);
        long count = labeled.sum().item<long>();
        if (count == 0)
            return (student.sum() * 0).MoveToOuterDisposeScope(); // keeps the graph connected, value 0
        Tensor loss;
        if (Kind == PredictionTask.MulticlassClassification)
        {
            loss = nn.functional.cross_entropy(student, targets, null, MissingTarget.ClassIndex, nn.Reduction.Mean);
        }
        else
        {
            var z = student.reshape(-1).masked_select(labeled);
            var y = targets.masked_select(labeled);
            loss = nn.functional.binary_cross_entropy_with_logits(z, y, null, nn.Reduction.Mean, null);
        }
        return loss.MoveToOuterDisposeScope();
    }

    private Tensor AsClassLogits(Tensor logits)
    {
        if (Kind == PredictionTask.MulticlassClassification)
            return logits;
        var z = logits.reshape(-1, 1);
        return torch.cat(new[] { torch.zeros_like(z), z }, 1);
    }
}
