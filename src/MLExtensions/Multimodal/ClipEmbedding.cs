using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Internals;
using MLExtensions.Core.Native;
using MLExtensions.Multimodal;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(ClipEmbeddingTransformer), null, typeof(SignatureLoadModel), "MLExtensions CLIP embedding", ClipEmbeddingTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(ClipEmbeddingTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions CLIP embedding", ClipEmbeddingTransformer.LoaderSignature)]

namespace MLExtensions.Multimodal;

/// <summary>Which tower of a CLIP model a <see cref="ClipEmbeddingTransformer"/> runs.</summary>
public enum ClipModality
{
    /// <summary>The image tower: an image column in.</summary>
    Image,

    /// <summary>The text tower: a text column in.</summary>
    Text,
}

/// <summary>The shape of pixel-vector image columns for CLIP transforms (MLImage columns of a fixed size declare it themselves).</summary>
public sealed class ClipImageInputOptions
{
    /// <summary>Height of the images in a pixel-vector column (values as ML.NET's <c>ExtractPixels</c> writes them: Single 0–255, C×H×W, RGB).</summary>
    public int? ImageHeight { get; set; }

    /// <summary>Width of the images in a pixel-vector column.</summary>
    public int? ImageWidth { get; set; }
}

/// <summary>Binds CLIP image inputs: MLImage or RGB pixel vectors, always three channels.</summary>
internal static class ClipImageInput
{
    /// <exception cref="ArgumentOutOfRangeException">Missing column, wrong type, undeclared size, or not three channels (names the column).</exception>
    public static ImageInput Bind(DataViewSchema schema, string column, int? height, int? width)
    {
        if (schema.GetColumnOrNull(column) is { Type: VectorDataViewType { IsKnownSize: true } vector } && height is int h && width is int w
            && vector.Size != 3 * h * w && vector.Size % (h * w) == 0)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The image column '{column}' holds {vector.Size / (h * w)} value(s) per pixel for the declared {h}×{w} images; CLIP needs RGB images " +
                $"(3 channels, {3 * h * w} values, C×H×W). Extract pixels with colorsToExtract RGB (e.g. after ConvertToGrayscale is removed).");
        return ImageInput.Bind(schema, column, 3, height, width, null);
    }
}

/// <summary>Creates a <see cref="ClipEmbeddingTransformer"/>: fitting checks the input column and copies the model (no training).</summary>
public sealed class ClipEmbeddingEstimator : IEstimator<ClipEmbeddingTransformer>
{
    private readonly IHost _host;
    private readonly string _output;
    private readonly string _input;
    private readonly ClipModel _model;
    private readonly ClipModality _modality;
    private readonly ClipImageInputOptions _image;

    internal ClipEmbeddingEstimator(IHostEnvironment env, ClipModality modality, string outputColumnName, string inputColumnName, ClipModel model, ClipImageInputOptions? image)
    {
        _host = env.Register(nameof(ClipEmbeddingEstimator));
        Check.NotEmpty(outputColumnName, nameof(outputColumnName));
        Check.NotEmpty(inputColumnName, nameof(inputColumnName));
        ArgumentNullException.ThrowIfNull(model);
        model.ThrowIfDisposed();
        _modality = modality;
        _output = outputColumnName;
        _input = inputColumnName;
        _model = model;
        _image = image ?? new ClipImageInputOptions();
    }

    /// <inheritdoc />
    public ClipEmbeddingTransformer Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        TorchNativeLoader.EnsureLoaded();
        if (_modality == ClipModality.Text)
        {
            new Text.TextColumns(_input, null).Validate(input.Schema);
            return new ClipEmbeddingTransformer(_host, _model.CopyNetwork(), _model.Tokenizer, null, _input, _output);
        }
        var image = ClipImageInput.Bind(input.Schema, _input, _image.ImageHeight, _image.ImageWidth);
        return new ClipEmbeddingTransformer(_host, _model.CopyNetwork(), _model.Tokenizer, image, _input, _output);
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(_input, out var column))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The {(_modality == ClipModality.Text ? "text" : "image")} column '{_input}' was not found in the input schema.");
        if (_modality == ClipModality.Text && (column.ItemType is not TextDataViewType || column.Kind != SchemaShape.Column.VectorKind.Scalar))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The text column '{_input}' must be String (text); found {column.ItemType}.");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_output] = new SchemaShape.Column(_output, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}

/// <summary>
/// Adds a column of L2-normalized CLIP joint-space embeddings (<see cref="ClipModel.EmbeddingDimension"/> floats) of an
/// image column (CLIP's preprocessing inside: shortest side resized bicubic to the model's resolution, centre crop, CLIP
/// mean/std) or of a text column. Image and text embeddings of the same model are comparable by dot product. Saved with
/// the model's weights, configuration and tokenizer.
/// </summary>
public sealed class ClipEmbeddingTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string LoaderSignature = "MLExtClipEmbedding";

    private readonly ClipNetwork _network;
    private readonly ClipImageEncoder? _imageEncoder;
    private readonly string _input;
    private readonly string _output;
    private int _disposed;

    internal ClipEmbeddingTransformer(IHostEnvironment env, ClipNetwork network, ClipTokenizer tokenizer, ImageInput? image, string input, string output)
        : base(env.Register(nameof(ClipEmbeddingTransformer)))
    {
        _network = network;
        Tokenizer = tokenizer;
        Image = image;
        _input = input;
        _output = output;
        if (image is not null)
            _imageEncoder = new ClipImageEncoder(network, image.Height, image.Width);
        network.eval();
        _imageEncoder?.eval();
    }

    /// <summary>Which tower the transformer runs.</summary>
    public ClipModality Modality => Image is null ? ClipModality.Text : ClipModality.Image;

    /// <summary>Length of the embedding vectors.</summary>
    public int Dimension => _network.Config.ProjectionDim;

    /// <summary>The tokenizer (text tower).</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>The image column and its shape; null for text.</summary>
    public ImageInput? Image { get; }

    /// <summary>exp(logit_scale) of the model.</summary>
    public float LogitScale => MathF.Exp(_network.LogitScale.item<float>());

    /// <summary>L2-normalized embeddings of texts (with this model's text tower, whatever the transformer's modality).</summary>
    public float[][] EmbedTexts(IReadOnlyList<string?> texts)
    {
        ThrowIfDisposed();
        return EmbeddingRows.OfTexts(texts, t => ClipTextEncoding.Encode(_network, Tokenizer, t));
    }

    internal ClipNetwork Network => _network;

    /// <summary>Preprocessing + image tower + projection + normalization; null for text.</summary>
    internal ClipImageEncoder? ImageEncoder => _imageEncoder;

    /// <summary>The column read.</summary>
    internal string InputColumnName => _input;

    /// <summary>The embedding column added.</summary>
    internal string OutputColumnName => _output;

    private float[] EmbedImage(float[] pixels)
    {
        ThrowIfDisposed();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        return _imageEncoder!.call(torch.tensor(pixels).unsqueeze(0)).data<float>().ToArray();
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXCLIPE", LoaderSignature, typeof(ClipEmbeddingTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ThrowIfDisposed();
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.Writer.Write(_input);
        ctx.Writer.Write(_output);
        ClipImageInputPersistence.Save(ctx, Image);
        ClipPersistence.Save(ctx, _network.Config, Tokenizer);
        NetworkPersistence.SaveWeights(ctx, _network);
    }

    internal static ClipEmbeddingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        string input = ctx.Reader.ReadString(), output = ctx.Reader.ReadString();
        var image = ClipImageInputPersistence.Load(ctx, input);
        var (config, tokenizer) = ClipPersistence.Load(ctx, "CLIP embedding");
        var network = new ClipNetwork(config);
        NetworkPersistence.LoadWeights(ctx, network, "CLIP embedding");
        return new ClipEmbeddingTransformer(env, network, tokenizer, image, input, output);
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Releases the network's native memory. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _imageEncoder?.Dispose();
        _network.Dispose();
    }

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) == 1)
            throw new ObjectDisposedException(nameof(ClipEmbeddingTransformer), "This CLIP embedding transformer has been disposed (disposing a PredictionEngine disposes its model).");
    }

    private sealed class Mapper : MapperBase
    {
        private readonly ClipEmbeddingTransformer _owner;
        private readonly int _inputIndex;

        public Mapper(ClipEmbeddingTransformer owner, DataViewSchema schema) : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            if (owner.Image is null)
                new Text.TextColumns(owner._input, null).Validate(schema);
            else
            {
                var bound = ClipImageInput.Bind(schema, owner._input, owner.Image.Height, owner.Image.Width);
                if (bound.Height != owner.Image.Height || bound.Width != owner.Image.Width)
                    throw new ArgumentOutOfRangeException(nameof(schema), $"The image column '{owner._input}' holds {bound.Width}×{bound.Height} images; the transformer was fitted on {owner.Image.Width}×{owner.Image.Height}.");
            }
            _inputIndex = schema[owner._input].Index;
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
            new[] { new DataViewSchema.DetachedColumn(_owner._output, new VectorDataViewType(NumberDataViewType.Single, _owner.Dimension)) };

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) => column => activeOutput(0) && column == _inputIndex;

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            int dimension = _owner.Dimension;
            Func<float[]> embed;
            if (_owner.Image is null)
            {
                var getText = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[_inputIndex]);
                ReadOnlyMemory<char> text = default;
                embed = () =>
                {
                    getText(ref text);
                    return _owner.EmbedTexts(new[] { text.ToString() })[0];
                };
            }
            else
            {
                var bound = ClipImageInput.Bind(input.Schema, _owner._input, _owner.Image.Height, _owner.Image.Width);
                var read = bound.CreateReader(input);
                var pixels = new float[bound.Size];
                embed = () =>
                {
                    read(pixels);
                    return _owner.EmbedImage(pixels);
                };
            }
            return EmbeddingRows.VectorGetter(embed, dimension);
        }
    }
}

/// <summary>Text → normalized joint-space embeddings with a CLIP network.</summary>
internal static class ClipTextEncoding
{
    /// <summary>Tokenizes and encodes; returns L2-normalized [N, D] (in the caller's dispose scope).</summary>
    public static Tensor Encode(ClipNetwork network, ClipTokenizer tokenizer, IReadOnlyList<string?> texts)
    {
        using var tokens = Tokens(tokenizer, texts);
        return nn.functional.normalize(network.EncodeText(tokens), 2.0, 1L);
    }

    /// <summary>Token ids [N, context length] of texts.</summary>
    public static Tensor Tokens(ClipTokenizer tokenizer, IReadOnlyList<string?> texts)
    {
        int length = tokenizer.ContextLength;
        var ids = new long[texts.Count * length];
        for (int i = 0; i < texts.Count; i++)
            tokenizer.Encode(texts[i]).CopyTo(ids, i * length);
        return torch.tensor(ids).view(texts.Count, length);
    }
}

/// <summary>Saves the bound image column shape (or its absence, for text).</summary>
internal static class ClipImageInputPersistence
{
    public static void Save(ModelSaveContext ctx, ImageInput? image)
    {
        ctx.Writer.Write(image is not null);
        if (image is null)
            return;
        ctx.Writer.Write((int)image.Kind);
        ctx.Writer.Write(image.Channels);
        ctx.Writer.Write(image.Height);
        ctx.Writer.Write(image.Width);
    }

    public static ImageInput? Load(ModelLoadContext ctx, string column)
    {
        if (!ctx.Reader.ReadBoolean())
            return null;
        var kind = (ImageColumnKind)ctx.Reader.ReadInt32();
        int channels = ctx.Reader.ReadInt32(), height = ctx.Reader.ReadInt32(), width = ctx.Reader.ReadInt32();
        if (!Enum.IsDefined(kind) || channels is not (1 or 3) || height < 1 || width < 1)
            throw new InvalidDataException("The image input in the model file is corrupted (invalid image shape).");
        return new ImageInput(column, kind, channels, height, width, null);
    }
}
