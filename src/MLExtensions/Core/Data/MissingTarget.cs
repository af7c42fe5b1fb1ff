namespace MLExtensions.Core;

/// <summary>
/// How a row without a label is marked in a target tensor when such rows are kept (distillation keeps them, because
/// the teacher's outputs still teach). Losses and metrics skip marked rows.
/// </summary>
public static class MissingTarget
{
    /// <summary>The class index of an unlabeled multiclass row: −100, which PyTorch's cross-entropy ignores by default.</summary>
    public const long ClassIndex = -100;

    /// <summary>The marker for <paramref name="kind"/>: <see cref="ClassIndex"/> for multiclass, NaN otherwise.</summary>
    public static float For(PredictionTask kind) => kind == PredictionTask.MulticlassClassification ? ClassIndex : float.NaN;

    /// <summary>A boolean mask [N] of the rows of <paramref name="targets"/> that have a label.</summary>
    public static TorchSharp.torch.Tensor LabeledRows(TorchSharp.torch.Tensor targets, PredictionTask kind) =>
        kind == PredictionTask.MulticlassClassification ? targets.ge(0) : targets.isnan().logical_not();
}
