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

    public bool IsBinary => Kind == PredictionTask.BinaryClassification;

    /// <summary>Outputs that can be explained: the classes of a multiclass model, both classes of a binary one, else one.</summary>
    public int TargetCount => IsMulticlass ? ClassCount : IsBinary ? 2 : 1;

    /// <summary>
    /// The type of the <c>ExplainedClass</c> column: the type of the model's PredictedLabel (a key for multiclass models,
    /// Boolean for binary ones); null for regression, which has no class.
    /// </summary>
    public DataViewType? ExplainedClassType => Kind switch
    {
        PredictionTask.MulticlassClassification => new KeyDataViewType(typeof(uint), ClassCount),
        PredictionTask.BinaryClassification => BooleanDataViewType.Instance,
        _ => null,
    };

    /// <summary>
    /// The explained target when TargetClass is unset and the scores are <paramref name="scores"/>: the predicted class of a
    /// multiclass model, the positive class (1) of a binary one — its Score is the positive class's — and 0 for regression.
    /// </summary>
    public int DefaultTarget(ReadOnlySpan<float> scores) => IsMulticlass ? PredictionOutputs.ArgMax(scores) : IsBinary ? 1 : 0;

    /// <summary>
    /// The explained output for <paramref name="target"/> from a row's scores: the class's probability (multiclass), the
    /// Score for the positive class of a binary model and −Score for its negative class (σ(−s) = 1 − σ(s), so −Score is the
    /// negative class's logit), the prediction for regression.
    /// </summary>
    public double Pick(ReadOnlySpan<float> scores, int target) => IsMulticlass ? scores[target] : IsBinary && target == 0 ? -scores[0] : scores[0];

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

    /// <summary>
    /// What <paramref name="model"/> predicts, found without data: from its last network, or from its last prediction
    /// transformer scored on a schema holding only its feature column; null when neither tells (e.g. a custom mapping).
    /// </summary>
    public static ModelOutputs? OfModel(ITransformer model)
    {
        var last = MLExtensions.Onnx.Export.ExportTarget.Steps(model).LastOrDefault();
        if (last is NetworkTransformerBase network)
            return FromNetwork(network);
        if (last is ISingleFeaturePredictionTransformer<object> predictor && predictor.FeatureColumnName is { } feature)
        {
            var builder = new DataViewSchema.Builder();
            builder.AddColumn(feature, predictor.FeatureColumnType);
            return Of(predictor, builder.ToSchema());
        }
        return null;
    }

    /// <summary>
    /// What the model predicts, read from the columns it already added to <paramref name="scored"/> (an explanation applied
    /// after the model); null when <paramref name="scored"/> has no Score column.
    /// </summary>
    public static PredictionTask? KindOf(SchemaShape scored)
    {
        if (!scored.TryFindColumn(DefaultColumnNames.Score, out var score))
            return null;
        if (score.Kind == SchemaShape.Column.VectorKind.Vector)
            return PredictionTask.MulticlassClassification;
        return scored.TryFindColumn(DefaultColumnNames.PredictedLabel, out var predicted) && predicted.ItemType == BooleanDataViewType.Instance && !predicted.IsKey
            ? PredictionTask.BinaryClassification
            : PredictionTask.Regression;
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
        if (IsBinary && t > 1)
            throw new ArgumentOutOfRangeException("TargetClass", t, $"TargetClass {t} is outside the classes: the model is a binary classifier (0 = the negative class, 1 = the positive class, the default).");
        if (Kind == PredictionTask.Regression && t != 0)
            throw new ArgumentOutOfRangeException("TargetClass", t, $"TargetClass {t} is outside the classes: the model is a {Kind} model with one output (use 0 or leave TargetClass unset).");
        if (IsMulticlass && t >= ClassCount)
            throw new ArgumentOutOfRangeException("TargetClass", t, $"TargetClass {t} is outside the classes: the model has {ClassCount} classes (0 to {ClassCount - 1}).");
    }
}
