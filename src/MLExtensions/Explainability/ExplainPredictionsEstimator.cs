using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Onnx.Export;
using MLExtensions.Text;

namespace MLExtensions.Explainability;

/// <summary>
/// Creates an <see cref="ExplanationTransformer"/> for a fitted model. <c>Fit</c> reads the background rows (baseline,
/// references, expected output); nothing is trained.
/// </summary>
public sealed class ExplainPredictionsEstimator : IEstimator<ExplanationTransformer>
{
    private readonly IHost _host;
    private readonly ITransformer _model;
    private readonly ExplanationOptions _options;

    internal ExplainPredictionsEstimator(IHostEnvironment env, ITransformer model, ExplanationOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        _host = env.Register(nameof(ExplainPredictionsEstimator));
        options.Validate();
        _model = model;
        _options = options;
    }

    /// <inheritdoc />
    public ExplanationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var network = FindNetwork(_model, _options.Method);
        if (network is not null)
            TorchNativeLoader.EnsureLoaded();
        // The default column is the one the model's network reads, for KernelSHAP too.
        string column = ExplanationTransformer.ExplainedColumnName(_options, network ?? ExportTarget.Steps(_model).OfType<NetworkTransformerBase>().LastOrDefault());
        if (network is not null && _options.Method != ExplanationMethod.KernelShap && !network.NetworkInputColumns.Contains(column))
            throw new ArgumentOutOfRangeException(nameof(ExplanationOptions.InputColumnName), column,
                $"{_options.Method} explains the column the network reads ('{network.NetworkInputColumns[0]}'); InputColumnName is '{column}'. Leave it unset or use KernelShap.");
        float[][] references;
        (int Height, int Width)? image = null;
        if (network is TextClassifierTransformer && _options.Method != ExplanationMethod.KernelShap)
        {
            new TextColumns(column, null).Validate(input.Schema);
            if (ExplainedColumn.CountRows(input, 1) == 0)
                throw EmptyBackground();
            references = Array.Empty<float[]>();
        }
        else if (network is not null && _options.Method != ExplanationMethod.KernelShap)
        {
            network.CreateNetworkInput(new EmptyRowOf(input.Schema));
            references = ExplainedColumn.ReadNetworkInputs(network, input, _options.BackgroundRows);
        }
        else if (network is null && ExplainedColumn.IsImage(input.Schema, column))
        {
            // KernelSHAP over image patches: the reference is one image, the background's pixel-wise mean (or zeros / a given one).
            var (mean, height, width) = ExplainedColumn.MeanImage(input, column, _options.BackgroundRows) ?? throw EmptyBackground();
            references = new[] { mean };
            image = (height, width);
        }
        else if (ExplainedColumn.IsText(input.Schema, column))
        {
            // KernelSHAP over words: an absent word is removed, so there are no background values to read.
            if (ExplainedColumn.CountRows(input, 1) == 0)
                throw EmptyBackground();
            references = Array.Empty<float[]>();
        }
        else
        {
            ExplainedColumn.ValidateVector(input.Schema, column, 0);
            references = ExplainedColumn.ReadVectors(input, column, _options.BackgroundRows);
            if (references.Length == 0)
                throw EmptyBackground();
        }
        if (references.Length == 0 && network is not null && network is not TextClassifierTransformer)
            throw EmptyBackground();
        var slotNames = references.Length > 0 && image is null ? ExplainedColumn.SlotNames(input.Schema, column, references[0].Length) : null;
        var transformer = ExplanationTransformer.Create(_host, _model, network, _options, column, references, slotNames, image);
        // Checks the explained column, the model's Score and TargetClass on the background's schema now, not at the first Transform.
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    /// <inheritdoc />
    /// <remarks>
    /// The same columns as the fitted transformer adds: <c>ExplainedClass</c> for classifiers (what the model predicts is
    /// read from the Score and PredictedLabel already in <paramref name="inputSchema"/>, else from the model's last network
    /// or prediction transformer) and <c>Tokens</c> with a variable-size <c>Attributions</c> for text.
    /// </remarks>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var network = FindNetwork(_model, _options.Method);
        string column = ExplanationTransformer.ExplainedColumnName(_options, network ?? ExportTarget.Steps(_model).OfType<NetworkTransformerBase>().LastOrDefault());
        if (!inputSchema.TryFindColumn(column, out var explained))
            throw new ArgumentOutOfRangeException(nameof(ExplanationOptions.InputColumnName), column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", inputSchema.Select(c => c.Name))}].");
        bool text = network is TextClassifierTransformer
            || (_options.Method == ExplanationMethod.KernelShap && explained.ItemType is TextDataViewType && explained.Kind == SchemaShape.Column.VectorKind.Scalar);
        var columns = inputSchema.ToDictionary(c => c.Name);
        void Add(string name, SchemaShape.Column.VectorKind kind, DataViewType type, bool isKey = false, SchemaShape? annotations = null) =>
            columns[name] = new SchemaShape.Column(name, kind, type, isKey, annotations);
        var slotNames = !text && explained.HasSlotNames() ? Annotation(AnnotationUtils.Kinds.SlotNames, TextDataViewType.Instance) : null;
        Add(ExplanationTransformer.AttributionsColumn, text ? SchemaShape.Column.VectorKind.VariableVector : SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, annotations: slotNames);
        Add(ExplanationTransformer.BaseValueColumn, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single);
        Add(ExplanationTransformer.ConvergenceDeltaColumn, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single);
        var outputs = network is not null ? ModelOutputs.FromNetwork(network) : ModelOutputs.OfModel(_model);
        switch (outputs?.Kind ?? ModelOutputs.KindOf(inputSchema))
        {
            case PredictionTask.MulticlassClassification:
                var keyValues = outputs?.PredictedLabelAnnotations?.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues)?.Type.GetItemType()
                    ?? (inputSchema.TryFindColumn(DefaultColumnNames.PredictedLabel, out var predicted)
                        && predicted.Annotations.TryFindColumn(AnnotationUtils.Kinds.KeyValues, out var values) ? values.ItemType : null);
                Add(ExplanationTransformer.ExplainedClassColumn, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, isKey: true,
                    keyValues is null ? null : Annotation(AnnotationUtils.Kinds.KeyValues, keyValues));
                break;
            case PredictionTask.BinaryClassification:
                Add(ExplanationTransformer.ExplainedClassColumn, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance);
                break;
        }
        if (text)
            Add(ExplanationTransformer.TokensColumn, SchemaShape.Column.VectorKind.VariableVector, TextDataViewType.Instance);
        return new SchemaShape(columns.Values);
    }

    private static SchemaShape Annotation(string kind, DataViewType itemType) =>
        new(new[] { new SchemaShape.Column(kind, SchemaShape.Column.VectorKind.Vector, itemType, false) });

    /// <summary>The network that gradient methods differentiate (the last of the library's networks in the model), or null for KernelSHAP.</summary>
    internal static NetworkTransformerBase? FindNetwork(ITransformer model, ExplanationMethod method)
    {
        var network = ExportTarget.Steps(model).OfType<NetworkTransformerBase>().LastOrDefault();
        if (method == ExplanationMethod.KernelShap || network is not null)
            return method == ExplanationMethod.KernelShap ? null : network;
        throw new ArgumentException(
            $"{method} needs the gradients of one of MLExtensions' networks (NeuralNetwork, ImageClassifier, TextClassifier or a distilled student), " +
            $"but the model is {ExportTarget.Describe(model)}, which has no gradients. Use ExplanationMethod.KernelShap, which explains any model through its predictions.",
            "model");
    }

    private static ArgumentException EmptyBackground() =>
        new("The background data has no rows; ExplainPredictions needs at least one background row for the baseline and the expected output.", "input");

    /// <summary>A row with a schema and no values, to run a network's schema checks without a cursor.</summary>
    internal sealed class EmptyRowOf : DataViewRow
    {
        public EmptyRowOf(DataViewSchema schema) => Schema = schema;

        public override DataViewSchema Schema { get; }

        public override long Position => -1;

        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = default;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) =>
            (ref TValue value) => throw new InvalidOperationException("This row has no values.");

        public override bool IsColumnActive(DataViewSchema.Column column) => true;
    }
}
