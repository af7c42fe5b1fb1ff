using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;
using MLExtensions.Core.Internals;

[assembly: LoadableClass(typeof(ImageClassifierTransformer), null, typeof(SignatureLoadModel), "MLExtensions image classifier", ImageClassifierTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(ImageClassifierTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions image classifier", ImageClassifierTransformer.LoaderSignature)]


namespace MLExtensions.Vision;

/// <summary>
/// A fitted image classifier, produced by <c>ImageClassifier</c>. Reads the image column, preprocesses inside the
/// network and adds <c>Score</c> and <c>PredictedLabel</c> like ML.NET's multiclass trainers. Saved and loaded with
/// <c>mlContext.Model.Save/Load</c> (weights and preprocessing statistics inside the zip).
/// </summary>
public sealed class ImageClassifierTransformer : NetworkTransformerBase
{
    internal const string LoaderSignature = "MLExtImageClassifier";

    private readonly ImageClassifierOptions _options;

    internal ImageClassifierTransformer(IHostEnvironment env, ImageClassifierNetwork network, PredictionOutputs outputs, ImageClassifierOptions options, ImageInput image)
        : base(env.Register(nameof(ImageClassifierTransformer)), network, outputs, options.ScoringPrecision)
    {
        _options = options;
        Image = image;
    }

    /// <summary>The options it was trained with (image settings that a distillation student copies).</summary>
    internal ImageClassifierOptions Options => _options;

    /// <summary>The image column and its declared shape.</summary>
    public ImageInput Image { get; }

    /// <summary>The network (preprocessing and architecture).</summary>
    public ImageClassifierNetwork Classifier => (ImageClassifierNetwork)Network;

    /// <summary>The architecture.</summary>
    public ImageArchitecture Architecture => _options.Architecture;

    private protected override IReadOnlyList<string> InputColumnNames => new[] { Image.ColumnName };

    private protected override void ValidateInputSchema(DataViewSchema schema) => Image.Validate(schema);

    private protected override Func<Tensor> CreateRowInput(DataViewRow row)
    {
        var read = Image.CreateReader(row);
        return FloatRowInput(Image.Size, new long[] { 1, Image.Size }, buffer => read(buffer));
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXIMGCL", LoaderSignature, typeof(ImageClassifierTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        NetworkPersistence.SaveOptions(ctx, _options);
        ctx.Writer.Write(Image.ColumnName);
        ctx.Writer.Write((int)Image.Kind);
        ctx.Writer.Write(Image.Channels);
        ctx.Writer.Write(Image.Height);
        ctx.Writer.Write(Image.Width);
        ctx.Writer.Write(Classifier.Preprocess.OutputChannels);
        ctx.Writer.Write(Classifier.Preprocess.OutputSize);
        Outputs.Save(Host, ctx);
        NetworkPersistence.SaveWeights(ctx, Network);
    }

    internal static ImageClassifierTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        var options = NetworkPersistence.LoadOptions<ImageClassifierOptions>(ctx, LoaderSignature);
        string column = ctx.Reader.ReadString();
        var kind = (ImageColumnKind)ctx.Reader.ReadInt32();
        int channels = ctx.Reader.ReadInt32(), height = ctx.Reader.ReadInt32(), width = ctx.Reader.ReadInt32();
        int networkChannels = ctx.Reader.ReadInt32(), inputSize = ctx.Reader.ReadInt32();
        if (!Enum.IsDefined(kind) || channels is not (1 or 3) || height < 1 || width < 1 || networkChannels is not (1 or 3) || inputSize < 1)
            throw new InvalidDataException("The image classifier in the model file is corrupted (invalid image shape).");
        var outputs = PredictionOutputs.Load(env, ctx);
        var net = ImageNetworks.Create(options.Architecture, networkChannels, outputs.ClassCount, inputSize, inputSize, options.Network, null);
        var network = new ImageClassifierNetwork(new ImagePreprocessor(channels, height, width, networkChannels, inputSize), net, options.TestTimeFlip);
        NetworkPersistence.LoadWeights(ctx, network, LoaderSignature);
        return new ImageClassifierTransformer(env, network, outputs, options, new ImageInput(column, kind, channels, height, width, null));
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);
}
