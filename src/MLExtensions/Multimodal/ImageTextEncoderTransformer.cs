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
/// A fitted image/text encoder — LiT towers (locked ResNet-18 and MiniLM with trained projections) or a fine-tuned CLIP
/// model's towers: adds the L2-normalized joint-space embedding of the image column, and embeds texts with
/// <see cref="EmbedTexts"/> in the same space (cosine similarity = dot product). Saved with both towers.
/// </summary>
public sealed class ImageTextEncoderTransformer : RowToRowTransformerBase, IImageTextModel, IDisposable
{
    internal const string LoaderSignature = "MLExtImageTextEncoder";
    private const string TextTowerEntry = "TextTower";
    private const byte LitTowers = 0, ClipTowers = 1;

    private readonly LitNetwork? _lit;                          // LiT towers
    private readonly SentenceEmbeddingTransformer? _textTower;  // LiT towers
    private readonly ClipImageEncoder? _clip;                   // CLIP towers (the encoder holds the whole CLIP network)
    private readonly ClipTokenizer? _tokenizer;                 // CLIP towers
    private readonly string _output;
    private int _disposed;

    internal ImageTextEncoderTransformer(IHostEnvironment env, LitNetwork network, SentenceEmbeddingTransformer textTower, ImageInput image, string output)
        : base(env.Register(nameof(ImageTextEncoderTransformer)))
    {
        _lit = network;
        _lit.eval();
        _textTower = textTower;
        Image = image;
        _output = output;
    }

    internal ImageTextEncoderTransformer(IHostEnvironment env, ClipImageEncoder clip, ClipTokenizer tokenizer, ImageInput image, string output)
        : base(env.Register(nameof(ImageTextEncoderTransformer)))
    {
        _clip = clip;
        _clip.eval();
        _tokenizer = tokenizer;
        Image = image;
        _output = output;
    }

    /// <summary>The image column and its shape.</summary>
    public ImageInput Image { get; }

    /// <summary>Length of the joint embeddings.</summary>
    public int Dimension => _lit?.Projection.Dimension ?? _clip!.Clip.Config.ProjectionDim;

    /// <inheritdoc />
    public int EmbeddingDimension => Dimension;

    /// <summary>True when the towers are a fine-tuned CLIP model's (<see cref="ImageTextEncoderOptions.ClipModel"/>), false for LiT.</summary>
    public bool IsClip => _clip is not null;

    /// <summary>A copy of the image side (raw pixels → normalized embeddings) that the caller owns, for the zero-shot classifier.</summary>
    internal nn.Module<Tensor, Tensor> CopyImageEncoder()
    {
        ThrowIfDisposed();
        if (_clip is not null)
            return new ClipImageEncoder(EmbeddingRows.CopyWeights(_clip.Clip, new ClipNetwork(_clip.Clip.Config)), Image.Height, Image.Width);
        return new LitImageEncoder(EmbeddingRows.CopyWeights(_lit!, CreateNetwork(Image, _lit!.ImageTower.Preprocess.OutputSize, _lit.Projection.TextFeatures, Dimension)));
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
            using var scale = _lit?.Projection.Scale() ?? _clip!.Clip.LogitScale.clamp_max(ContrastiveProjection.MaxLogitScale).exp();
            return scale.item<float>();
        }
    }

    /// <summary>The LiT towers; null for CLIP towers.</summary>
    internal LitNetwork? Lit => _lit;

    /// <summary>The CLIP image side (and through it the whole network); null for LiT towers.</summary>
    internal ClipImageEncoder? Clip => _clip;

    /// <summary>CLIP's tokenizer for CLIP towers; null for LiT.</summary>
    internal ClipTokenizer? Tokenizer => _tokenizer;

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
        if (_clip is not null)
            return ClipTextEncoding.Encode(_clip.Clip, _tokenizer!, texts);
        var features = _textTower!.Embed(texts);
        using var tensor = torch.tensor(features.SelectMany(f => f).ToArray(), new long[] { texts.Count, _textTower.Dimension });
        return _lit!.Projection.ProjectTexts(tensor);
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
        return EmbeddingRows.Of(_clip is not null ? _clip.call(raw) : _lit!.Projection.ProjectImages(LockedImageTower.Features(_lit.ImageTower, raw)));
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
        if (_clip is not null)
        {
            ctx.Writer.Write(ClipTowers);
            ClipPersistence.Save(ctx, _clip.Clip.Config, _tokenizer!);
            NetworkPersistence.SaveWeights(ctx, _clip.Clip);
            return;
        }
        ctx.Writer.Write(LitTowers);
        ctx.Writer.Write(_lit!.ImageTower.Preprocess.OutputSize);
        ctx.Writer.Write(_lit.Projection.TextFeatures);
        ctx.Writer.Write(Dimension);
        ctx.SaveModel(_textTower, TextTowerEntry);
        NetworkPersistence.SaveWeights(ctx, _lit);
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
        byte towers = ctx.Reader.ReadByte();
        if (towers == ClipTowers)
        {
            var (config, tokenizer) = ClipPersistence.Load(ctx, component);
            var clip = new ClipNetwork(config);
            NetworkPersistence.LoadWeights(ctx, clip, component);
            return new ImageTextEncoderTransformer(env, new ClipImageEncoder(clip, image.Height, image.Width), tokenizer, image, output);
        }
        if (towers != LitTowers)
            throw new InvalidDataException($"The {component} in the model file is corrupted (unknown tower kind {towers}).");
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
        _lit?.Dispose();
        _textTower?.Dispose();
        _clip?.Dispose();
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
