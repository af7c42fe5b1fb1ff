using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Internals;
using MLExtensions.Core.Native;
using MLExtensions.Multimodal;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(ImageTextEncoderTransformer), null, typeof(SignatureLoadModel), "MLExtensions image/text encoder", ImageTextEncoderTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(ImageTextEncoderTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions image/text encoder", ImageTextEncoderTransformer.LoaderSignature)]

namespace MLExtensions.Multimodal;

/// <summary>
/// A fitted LiT image/text encoder: adds the L2-normalized joint-space embedding of the image column, and embeds texts
/// with <see cref="EmbedTexts"/> in the same space (cosine similarity = dot product). Saved with both towers and the projections.
/// </summary>
public sealed class ImageTextEncoderTransformer : RowToRowTransformerBase, IImageTextModel, IDisposable
{
    internal const string LoaderSignature = "MLExtImageTextEncoder";
    private const string TextTowerEntry = "TextTower";

    private readonly LitNetwork _network;
    private readonly SentenceEmbeddingTransformer _textTower;
    private readonly string _output;
    private int _disposed;

    internal ImageTextEncoderTransformer(IHostEnvironment env, LitNetwork network, SentenceEmbeddingTransformer textTower, ImageInput image, string output)
        : base(env.Register(nameof(ImageTextEncoderTransformer)))
    {
        _network = network;
        _network.eval();
        _textTower = textTower;
        Image = image;
        _output = output;
    }

    /// <summary>The image column and its shape.</summary>
    public ImageInput Image { get; }

    /// <summary>Length of the joint embeddings.</summary>
    public int Dimension => _network.Projection.Dimension;

    /// <inheritdoc />
    public int EmbeddingDimension => Dimension;

    /// <summary>A copy of the image tower and projections that the caller owns.</summary>
    internal LitNetwork CopyNetwork()
    {
        ThrowIfDisposed();
        return EmbeddingRows.CopyWeights(_network, CreateNetwork(Image, _network.ImageTower.Preprocess.OutputSize, _network.Projection.TextFeatures, Dimension));
    }

    /// <summary>An untrained network of the given shapes (weights to be loaded or copied).</summary>
    internal static LitNetwork CreateNetwork(ImageInput image, int inputSize, int textFeatures, int dimension)
    {
        using var generator = new Generator(0, CPU);
        return new LitNetwork(LockedImageTower.Create(image, inputSize, pretrained: false, null), new ContrastiveProjection(512, textFeatures, dimension, generator));
    }

    /// <summary>The learned temperature: exp(logit_scale), clamped at 100 as in CLIP.</summary>
    public float LogitScale
    {
        get
        {
            ThrowIfDisposed();
            using var scale = _network.Projection.Scale();
            return scale.item<float>();
        }
    }

    internal LitNetwork Network => _network;

    /// <summary>The image embedding column added.</summary>
    internal string OutputColumnName => _output;

    /// <summary>L2-normalized joint-space embeddings of texts.</summary>
    public float[][] EmbedTexts(IReadOnlyList<string?> texts)
    {
        ThrowIfDisposed();
        return EmbeddingRows.OfTexts(texts, EncodeTexts);
    }

    /// <summary>Normalized text embeddings [N, D] in the caller's dispose scope.</summary>
    internal Tensor EncodeTexts(IReadOnlyList<string?> texts)
    {
        var features = _textTower.Embed(texts);
        using var tensor = torch.tensor(features.SelectMany(f => f).ToArray(), new long[] { texts.Count, _textTower.Dimension });
        return _network.Projection.ProjectTexts(tensor);
    }

    /// <summary>L2-normalized joint-space embeddings of raw images [N, C·H·W] (values as the image column gives them).</summary>
    public float[][] EmbedImages(ReadOnlySpan<float> pixels)
    {
        ThrowIfDisposed();
        if (pixels.Length == 0 || pixels.Length % Image.Size != 0)
            throw new ArgumentException($"Expected a multiple of {Image.Size} values ({Image.Channels} × {Image.Height} × {Image.Width}); found {pixels.Length}.", nameof(pixels));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var raw = torch.tensor(pixels.ToArray(), new long[] { pixels.Length / Image.Size, Image.Size });
        return EmbeddingRows.Of(_network.Projection.ProjectImages(LockedImageTower.Features(_network.ImageTower, raw)));
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXLITEN", LoaderSignature, typeof(ImageTextEncoderTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ThrowIfDisposed();
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.Writer.Write(Image.ColumnName);
        ClipImageInputPersistence.Save(ctx, Image);
        ctx.Writer.Write(_output);
        ctx.Writer.Write(_network.ImageTower.Preprocess.OutputSize);
        ctx.Writer.Write(_network.Projection.TextFeatures);
        ctx.Writer.Write(Dimension);
        ctx.SaveModel(_textTower, TextTowerEntry);
        NetworkPersistence.SaveWeights(ctx, _network);
    }

    internal static ImageTextEncoderTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        const string component = "image/text encoder";
        string column = ctx.Reader.ReadString();
        var image = ClipImageInputPersistence.Load(ctx, column) ?? throw new InvalidDataException($"The {component} in the model file has no image input.");
        string output = ctx.Reader.ReadString();
        int inputSize = ctx.Reader.ReadInt32(), textFeatures = ctx.Reader.ReadInt32(), dimension = ctx.Reader.ReadInt32();
        if (inputSize < 32 || textFeatures < 1 || dimension < 1)
            throw new InvalidDataException($"The {component} in the model file is corrupted (invalid shapes).");
        ctx.LoadModel<SentenceEmbeddingTransformer, SignatureLoadModel>(env, out var textTower, TextTowerEntry);
        var network = CreateNetwork(image, inputSize, textFeatures, dimension);
        NetworkPersistence.LoadWeights(ctx, network, component);
        return new ImageTextEncoderTransformer(env, network, textTower, image, output);
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Releases the networks' native memory. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _network.Dispose();
        _textTower.Dispose();
    }

    internal void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) == 1)
            throw new ObjectDisposedException(nameof(ImageTextEncoderTransformer), "This image/text encoder has been disposed (disposing a PredictionEngine disposes its model).");
    }

    private sealed class Mapper : MapperBase
    {
        private readonly ImageTextEncoderTransformer _owner;
        private readonly int _inputIndex;

        public Mapper(ImageTextEncoderTransformer owner, DataViewSchema schema) : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            owner.Image.Validate(schema);
            _inputIndex = schema[owner.Image.ColumnName].Index;
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
            new[] { new DataViewSchema.DetachedColumn(_owner._output, new VectorDataViewType(NumberDataViewType.Single, _owner.Dimension)) };

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) => column => activeOutput(0) && column == _inputIndex;

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var read = _owner.Image.CreateReader(input);
            var pixels = new float[_owner.Image.Size];
            return EmbeddingRows.VectorGetter(() =>
            {
                read(pixels);
                return _owner.EmbedImages(pixels)[0];
            }, _owner.Dimension);
        }
    }
}
