using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>
/// What an explained model predicts, read from its output schema: the task (from the Score column's type and the
/// PredictedLabel column), the number of classes and the PredictedLabel annotations (key values) that the
/// <c>ExplainedClass</c> column copies.
/// </summary>
internal sealed class ModelOutputs
{
    private ModelOutputs(PredictionTask kind, int classCount, DataViewSchema.Annotations? predictedLabelAnnotations)
    {
        Kind = kind;
        ClassCount = classCount;
        PredictedLabelAnnotations = predictedLabelAnnotations;
    }

    public PredictionTask Kind { get; }

    /// <summary>Classes of a multiclass model (the Score vector's size); 1 otherwise.</summary>
    public int ClassCount { get; }

    /// <summary>Annotations of the model's PredictedLabel column (multiclass only), carrying its KeyValues.</summary>
    public DataViewSchema.Annotations? PredictedLabelAnnotations { get; }

    public bool IsMulticlass => Kind == PredictionTask.MulticlassClassification;

    /// <summary>Reads the task from <paramref name="model"/>'s output schema on <paramref name="inputSchema"/>.</summary>
    /// <exception cref="ArgumentException">The model has no usable Score column.</exception>
    public static ModelOutputs Of(ITransformer model, DataViewSchema inputSchema)
    {
        var output = model.GetOutputSchema(inputSchema);
        var score = output.GetColumnOrNull(DefaultColumnNames.Score);
        if (score is null)
            throw new ArgumentException(
                "ExplainPredictions needs a model that adds a Score column (a trained regressor or classifier, or a pipeline ending in one); " +
                $"the model's output columns are [{string.Join(", ", output.Select(c => c.Name))}].", "model");
        var type = score.Value.Type;
        if (type is VectorDataViewType { ItemType: NumberDataViewType itemType } vector && itemType == NumberDataViewType.Single && vector.Size > 1)
        {
            var predicted = output.GetColumnOrNull(DefaultColumnNames.PredictedLabel);
            var annotations = predicted is { Type: KeyDataViewType } ? predicted.Value.Annotations : null;
            return new ModelOutputs(PredictionTask.MulticlassClassification, vector.Size, annotations);
        }
        if (type != NumberDataViewType.Single)
            throw new ArgumentException($"The model's Score column must be Single or a known-size vector of Single; found {type}.", "model");
        bool binary = output.GetColumnOrNull(DefaultColumnNames.PredictedLabel) is { Type: BooleanDataViewType };
        return new ModelOutputs(binary ? PredictionTask.BinaryClassification : PredictionTask.Regression, 1, null);
    }

    /// <summary>The outputs of one of this library's networks (no input schema needed).</summary>
    public static ModelOutputs FromNetwork(MLExtensions.Core.NetworkTransformerBase network)
    {
        var outputs = network.Outputs;
        if (outputs.Kind != PredictionTask.MulticlassClassification)
            return new ModelOutputs(outputs.Kind, 1, null);
        var columns = outputs.GetColumns(new DataViewSchema.Builder().ToSchema());
        var predicted = columns.Single(c => c.Name == DefaultColumnNames.PredictedLabel);
        return new ModelOutputs(outputs.Kind, outputs.ClassCount, predicted.Annotations);
    }

    /// <summary>Checks <paramref name="target"/> against the classes.</summary>
    public void ValidateTarget(int? target)
    {
        if (target is not { } t)
            return;
        if (!IsMulticlass && t != 0)
            throw new ArgumentOutOfRangeException("TargetClass", t, $"TargetClass {t} is outside the classes: the model is a {Kind} model with one output (use 0 or leave TargetClass unset).");
        if (IsMulticlass && t >= ClassCount)
            throw new ArgumentOutOfRangeException("TargetClass", t, $"TargetClass {t} is outside the classes: the model has {ClassCount} classes (0 to {ClassCount - 1}).");
    }
}
