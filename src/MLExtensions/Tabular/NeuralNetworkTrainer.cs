using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Tabular;

/// <summary>
/// Trains a multi-layer perceptron on a feature vector for regression, binary or multiclass classification.
/// Create it through <c>mlContext.{Regression|BinaryClassification|MulticlassClassification}.Trainers.NeuralNetwork</c>.
/// </summary>
/// <remarks>
/// <para>Input: a known-size <c>Vector&lt;Single&gt;</c> feature column; the label is <c>Single</c> (regression),
/// <c>Boolean</c> (binary) or a key (multiclass; use <c>MapValueToKey</c>).</para>
/// <para>Output: the same columns as ML.NET's built-in trainers of the task.</para>
/// <para>Normalization: not needed (features are standardized inside the network by default). Caching: not needed.
/// Exportable to ONNX: yes (see docs/onnx.md).</para>
/// </remarks>
public sealed class NeuralNetworkTrainer : NetworkTrainerBase<NeuralNetworkTransformer>
{
    private readonly NeuralNetworkOptions _options;
    private readonly PredictionTask _kind;
    private LabelBinding? _label;

    internal NeuralNetworkTrainer(IHostEnvironment env, NeuralNetworkOptions options, PredictionTask kind)
        : base(env, nameof(NeuralNetworkTrainer), options)
    {
        _options = options;
        _kind = kind;
    }

    /// <summary>The task this trainer learns.</summary>
    public PredictionTask Kind => _kind;

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(_options.FeatureColumnName, out var features))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The feature column '{_options.FeatureColumnName}' was not found in the input schema.");
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
            throw SchemaErrors.WrongType("feature", _options.FeatureColumnName, "a known-size vector of Single", features.ItemType);
        if (!inputSchema.TryFindColumn(_options.LabelColumnName, out var label))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The label column '{_options.LabelColumnName}' was not found in the input schema.");
        bool labelOk = _kind switch
        {
            PredictionTask.Regression => label.ItemType == NumberDataViewType.Single && label.Kind == SchemaShape.Column.VectorKind.Scalar,
            PredictionTask.BinaryClassification => (label.ItemType == BooleanDataViewType.Instance || label.ItemType == NumberDataViewType.Single) && label.Kind == SchemaShape.Column.VectorKind.Scalar,
            _ => label.IsKey && label.Kind == SchemaShape.Column.VectorKind.Scalar,
        };
        if (!labelOk)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"The label column '{_options.LabelColumnName}' has type {label.ItemType}{(label.IsKey ? " (key)" : "")}; {_kind} needs " +
                (_kind switch { PredictionTask.Regression => "Single", PredictionTask.BinaryClassification => "Boolean", _ => "a key type; use MapValueToKey" }) + ".");
        var result = inputSchema.ToDictionary(c => c.Name);
        foreach (var column in PredictionOutputs.GetShape(_kind, label))
            result[column.Name] = column;
        return new SchemaShape(result.Values);
    }

    /// <inheritdoc />
    protected override IRowReaderFactory CreateRowReader(DataViewSchema schema)
    {
        var label = LabelBinding.Bind(schema, _options.LabelColumnName, _kind);
        _label ??= label;
        return new FeatureVectorRowReader(schema, _options.FeatureColumnName, label, _options.InvalidFeatures);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateNetwork(DataViewSchema schema, TrainingData data, Generator generator)
    {
        int features = FeatureVectorRowReader.ValidateFeatureColumn(schema, _options.FeatureColumnName, null);
        var network = new MultiLayerPerceptron(features, _label!.ClassCount, _options, generator);
        SeededInitialization.Apply(network, generator);
        if (_options.FeatureScaling == FeatureScaling.Standardize)
        {
            var (means, stds) = FeatureStatistics.Compute(data.Train, features);
            network.Scaler.SetStatistics(means, stds);
        }
        return network;
    }

    /// <inheritdoc />
    protected override ITrainingTask CreateTask(nn.Module<Tensor, Tensor> network, DataViewSchema schema)
    {
        ILoss loss = _kind switch
        {
            PredictionTask.Regression => new RegressionLoss(_options.RegressionLoss, _options.HuberDelta),
            PredictionTask.BinaryClassification => new LogisticLoss(),
            _ => new CrossEntropyLoss(_options.LabelSmoothing),
        };
        return new SupervisedTask(network, loss, _kind);
    }

    /// <inheritdoc />
    protected override NeuralNetworkTransformer CreateTransformer(nn.Module<Tensor, Tensor> network, DataViewSchema schema, TrainingState state)
    {
        var mlp = (MultiLayerPerceptron)network;
        var label = _label!;
        _label = null;
        return new NeuralNetworkTransformer(Host, mlp, PredictionOutputs.FromLabel(label), _options, _options.FeatureColumnName, mlp.Inputs);
    }
}
