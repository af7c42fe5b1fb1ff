using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using TorchSharp;
using static TorchSharp.torch;
using MLExtensions.Core.Internals;

[assembly: LoadableClass(typeof(NeuralNetworkTransformer), null, typeof(SignatureLoadModel), "MLExtensions neural network", NeuralNetworkTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(NeuralNetworkTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions neural network", NeuralNetworkTransformer.LoaderSignature)]


namespace MLExtensions.Tabular;

/// <summary>
/// A fitted multi-layer perceptron, produced by the <c>NeuralNetwork</c> trainers. Reads the feature vector
/// and adds the prediction columns of its task (Score; Probability and PredictedLabel for binary; PredictedLabel
/// for multiclass), like ML.NET's built-in trainers. Saved and loaded with <c>mlContext.Model.Save/Load</c>.
/// </summary>
/// <remarks>
/// It implements ML.NET's single-feature prediction-transformer contract, so
/// <c>PermutationFeatureImportance</c> (and <c>PermutationFeatureImportanceNonCalibrated</c> for binary) accept it.
/// </remarks>
public sealed class NeuralNetworkTransformer : NetworkTransformerBase, ISingleFeaturePredictionTransformer<MultiLayerPerceptron>, ISingleFeaturePredictionTransformer
{
    internal const string LoaderSignature = "MLExtNeuralNetwork";

    private readonly NeuralNetworkOptions _options;

    internal NeuralNetworkTransformer(IHostEnvironment env, MultiLayerPerceptron network, PredictionOutputs outputs, NeuralNetworkOptions options, string featureColumn, int featureSize)
        : base(env.Register(nameof(NeuralNetworkTransformer)), network, outputs, options.ScoringPrecision)
    {
        _options = options;
        FeatureColumnName = featureColumn;
        FeatureSize = featureSize;
    }

    /// <summary>The feature column the network reads.</summary>
    public string FeatureColumnName { get; }

    /// <summary>Number of features the network expects.</summary>
    public int FeatureSize { get; }

    /// <summary>The type of the feature column: a vector of <see cref="FeatureSize"/> Single values.</summary>
    public DataViewType FeatureColumnType => new VectorDataViewType(NumberDataViewType.Single, FeatureSize);

    /// <summary>The trained network.</summary>
    public MultiLayerPerceptron Model => (MultiLayerPerceptron)Network;

    private protected override IReadOnlyList<string> InputColumnNames => new[] { FeatureColumnName };

    private protected override void ValidateInputSchema(DataViewSchema schema) =>
        FeatureVectorRowReader.ValidateFeatureColumn(schema, FeatureColumnName, FeatureSize);

    private protected override Func<Tensor> CreateRowInput(DataViewRow row)
    {
        var getter = row.GetGetter<VBuffer<float>>(row.Schema[FeatureColumnName]);
        VBuffer<float> features = default;
        return FloatRowInput(FeatureSize, new long[] { 1, FeatureSize }, buffer =>
        {
            getter(ref features);
            features.CopyTo(buffer);
        });
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXNNET ", LoaderSignature, typeof(NeuralNetworkTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        NetworkPersistence.SaveOptions(ctx, _options);
        ctx.Writer.Write(FeatureColumnName);
        ctx.Writer.Write(FeatureSize);
        Outputs.Save(Host, ctx);
        NetworkPersistence.SaveWeights(ctx, Network);
    }

    // SignatureLoadModel. Internal (the class has no public constructor of the same shape) — see mlnet-integration.md §5.2.
    internal static NeuralNetworkTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        var options = NetworkPersistence.LoadOptions<NeuralNetworkOptions>(ctx, LoaderSignature);
        string featureColumn = ctx.Reader.ReadString();
        int featureSize = ctx.Reader.ReadInt32();
        if (featureSize < 1)
            throw new InvalidDataException($"The model file is corrupted: feature size {featureSize}.");
        var outputs = PredictionOutputs.Load(env, ctx);
        var network = new MultiLayerPerceptron(featureSize, outputs.ClassCount, options, null);
        NetworkPersistence.LoadWeights(ctx, network, LoaderSignature);
        return new NeuralNetworkTransformer(env, network, outputs, options, featureColumn, featureSize);
    }

    // SignatureLoadRowMapper: used when the IDataView form of the transform is deserialized.
    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);
}
