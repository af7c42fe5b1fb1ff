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

[assembly: LoadableClass(typeof(ZeroShotImageClassifierTransformer), null, typeof(SignatureLoadModel), "MLExtensions zero-shot image classifier", ZeroShotImageClassifierTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(ZeroShotImageClassifierTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions zero-shot image classifier", ZeroShotImageClassifierTransformer.LoaderSignature)]

namespace MLExtensions.Multimodal;

/// <summary>
/// Zero-shot image classification with CLIP: the classes are named in text only. Fitting needs no labels — it embeds the
/// prompts of every class once; a key-typed label column, when present, only fixes the class order (its key values).
/// </summary>
public sealed class ZeroShotImageClassifierTrainer : IEstimator<ZeroShotImageClassifierTransformer>
{
    private readonly IHost _host;
    private readonly ZeroShotImageClassifierOptions _options;

    internal ZeroShotImageClassifierTrainer(IHostEnvironment env, ZeroShotImageClassifierOptions options)
    {
        _host = env.Register(nameof(ZeroShotImageClassifierTrainer));
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(classesFromLabel: true);
        _options = options;
    }

    /// <inheritdoc />
    public ZeroShotImageClassifierTransformer Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(input);
        TorchNativeLoader.EnsureLoaded();
        var (classNames, outputs) = ResolveClasses(input.Schema);
        var model = _options.Model!;
        ImageInput image;
        nn.Module<Tensor, Tensor> encoder;
        switch (model)
        {
            case ClipModel clip:
                image = ClipImageInput.Bind(input.Schema, _options.ImageColumnName, _options.ImageHeight, _options.ImageWidth);
                encoder = new ClipImageEncoder(clip.CopyNetwork(), image.Height, image.Width);
                break;
            case ImageTextEncoderTransformer lit:
                // The encoder's preprocessing is fixed to the image shape it was trained on.
                image = ImageInput.Bind(input.Schema, _options.ImageColumnName, lit.Image.Channels, lit.Image.Height, lit.Image.Width, null);
                if (image.Height != lit.Image.Height || image.Width != lit.Image.Width)
                    throw new ArgumentOutOfRangeException(nameof(input), $"The image column '{_options.ImageColumnName}' holds {image.Width}×{image.Height} images; the image/text encoder was trained on {lit.Image.Width}×{lit.Image.Height}.");
                encoder = lit.CopyImageEncoder();
                break;
            default:
                throw new ArgumentException($"Model must be a ClipModel or an ImageTextEncoderTransformer; found {model.GetType().Name}.", nameof(_options.Model));
        }
        using var classEmbeddings = ZeroShotNetwork.ClassEmbeddingsOf(model, classNames, _options.PromptTemplates.ToList());
        var zeroShot = new ZeroShotNetwork(encoder, classEmbeddings.clone());
        using var channel = _host.Start(nameof(ZeroShotImageClassifierTrainer));
        channel.Info($"Zero-shot classifier: {classNames.Count} classes × {_options.PromptTemplates.Count} prompt template(s).");
        var tokenizer = (model as ClipModel)?.Tokenizer ?? (model as ImageTextEncoderTransformer)?.Tokenizer;
        return new ZeroShotImageClassifierTransformer(_host, zeroShot, outputs, tokenizer, image, classNames, _options.PromptTemplates.ToList());
    }

    private (IReadOnlyList<string> Names, PredictionOutputs Outputs) ResolveClasses(DataViewSchema schema)
    {
        var label = schema.GetColumnOrNull(_options.LabelColumnName);
        if (label is not { Type: KeyDataViewType })
        {
            _options.Validate(classesFromLabel: false);
            return (_options.ClassNames.ToList(), PredictionOutputs.FromClassNames(_options.ClassNames.ToList()));
        }
        var binding = LabelBinding.Bind(schema, _options.LabelColumnName, PredictionTask.MulticlassClassification);
        var outputs = PredictionOutputs.FromLabel(binding);
        var keyNames = outputs.ClassNames ?? throw new ArgumentOutOfRangeException("inputSchema",
            $"The label column '{_options.LabelColumnName}' is a key without text key values, so its classes have no names; map it with MapValueToKey from text labels, or remove it and set ClassNames.");
        if (_options.ClassNames.Count > 0)
        {
            var given = new HashSet<string>(_options.ClassNames, StringComparer.Ordinal);
            if (!given.SetEquals(keyNames))
                throw new ArgumentException(
                    $"ClassNames ({string.Join(", ", _options.ClassNames)}) differ from the key values of the label column '{_options.LabelColumnName}' " +
                    $"({string.Join(", ", keyNames)}); leave ClassNames empty to use the key values.", nameof(_options.ClassNames));
        }
        var duplicate = keyNames.GroupBy(n => n.Trim(), StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"The label column '{_options.LabelColumnName}' has the class name '{duplicate.Key}' {duplicate.Count()} times (ignoring case).", nameof(_options.ClassNames));
        return (keyNames, outputs);
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(_options.ImageColumnName, out _))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The image column '{_options.ImageColumnName}' was not found in the input schema.");
        var result = inputSchema.ToDictionary(c => c.Name);
        var keyValues = new SchemaShape(new[] { new SchemaShape.Column(AnnotationUtils.Kinds.KeyValues, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false) });
        result["Score"] = new SchemaShape.Column("Score", SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        result["PredictedLabel"] = new SchemaShape.Column("PredictedLabel", SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, keyValues);
        return new SchemaShape(result.Values);
    }
}

/// <summary>
/// A fitted zero-shot classifier: reads the image column and adds ML.NET's multiclass columns — <c>Score</c> =
/// softmax(exp(logit_scale) · cosine(image, class)), <c>PredictedLabel</c> a key whose values are the class names — so
/// <c>mlContext.MulticlassClassification.Evaluate</c> works. Saved with the CLIP towers, tokenizer and class embeddings.
/// </summary>
public sealed class ZeroShotImageClassifierTransformer : NetworkTransformerBase
{
    internal const string LoaderSignature = "MLExtZeroShotImage";

    private const byte ClipTowers = 0, LitTowers = 1;

    private readonly ClipTokenizer? _tokenizer; // CLIP towers only

    internal ZeroShotImageClassifierTransformer(IHostEnvironment env, ZeroShotNetwork network, PredictionOutputs outputs, ClipTokenizer? tokenizer,
        ImageInput image, IReadOnlyList<string> classNames, IReadOnlyList<string> templates)
        : base(env.Register(nameof(ZeroShotImageClassifierTransformer)), network, outputs, ScoringPrecision.Float32) // no bfloat16 scoring option for CLIP towers yet
    {
        _tokenizer = tokenizer;
        Image = image;
        Classes = classNames;
        PromptTemplates = templates;
    }

    /// <summary>The image column and its shape.</summary>
    public ImageInput Image { get; }

    /// <summary>The class names, in class order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The prompt templates the class embeddings were made from.</summary>
    public IReadOnlyList<string> PromptTemplates { get; }

    /// <summary>The class embeddings [K][D] (normalized, prompt-ensembled).</summary>
    public float[][] ClassEmbeddings
    {
        get
        {
            ThrowIfDisposed();
            return EmbeddingRows.Of(ZeroShot.ClassEmbeddings);
        }
    }

    internal ZeroShotNetwork ZeroShot => (ZeroShotNetwork)Network;

    private protected override IReadOnlyList<string> InputColumnNames => new[] { Image.ColumnName };

    private protected override void ValidateInputSchema(DataViewSchema schema)
    {
        var bound = Image.Channels == 3 ? ClipImageInput.Bind(schema, Image.ColumnName, Image.Height, Image.Width) : ImageInput.Bind(schema, Image.ColumnName, Image.Channels, Image.Height, Image.Width, null);
        if (bound.Kind != Image.Kind || bound.Height != Image.Height || bound.Width != Image.Width)
            throw new ArgumentOutOfRangeException(nameof(schema), $"The image column '{Image.ColumnName}' must hold {Image.Width}×{Image.Height} images as when fitted ({Image.Kind}); found {bound.Width}×{bound.Height} ({bound.Kind}).");
    }

    private protected override Func<Tensor> CreateRowInput(DataViewRow row)
    {
        var read = Image.CreateReader(row);
        return FloatRowInput(Image.Size, new long[] { 1, Image.Size }, buffer => read(buffer));
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXZSHOT", LoaderSignature, typeof(ZeroShotImageClassifierTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ThrowIfDisposed();
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.Writer.Write(Image.ColumnName);
        ClipImageInputPersistence.Save(ctx, Image);
        NetworkPersistence.SaveOptions(ctx, Classes);
        NetworkPersistence.SaveOptions(ctx, PromptTemplates);
        Outputs.Save(Host, ctx);
        switch (ZeroShot.ImageEncoder)
        {
            case ClipImageEncoder clip:
                ctx.Writer.Write(ClipTowers);
                ClipPersistence.Save(ctx, clip.Clip.Config, _tokenizer!);
                break;
            case LitImageEncoder lit:
                ctx.Writer.Write(LitTowers);
                ctx.Writer.Write(lit.Lit.ImageTower.Preprocess.OutputSize);
                ctx.Writer.Write(lit.Lit.Projection.TextFeatures);
                ctx.Writer.Write(lit.Lit.Projection.Dimension);
                break;
        }
        NetworkPersistence.SaveWeights(ctx, Network);
    }

    internal static ZeroShotImageClassifierTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        const string component = "zero-shot image classifier";
        string column = ctx.Reader.ReadString();
        var image = ClipImageInputPersistence.Load(ctx, column) ?? throw new InvalidDataException($"The {component} in the model file has no image input.");
        var classes = NetworkPersistence.LoadOptions<List<string>>(ctx, component);
        var templates = NetworkPersistence.LoadOptions<List<string>>(ctx, component);
        var outputs = PredictionOutputs.Load(env, ctx);
        if (outputs.ClassCount != classes.Count)
            throw new InvalidDataException($"The {component} in the model file is corrupted: {classes.Count} class names for {outputs.ClassCount} outputs.");
        ZeroShotNetwork network;
        ClipTokenizer? tokenizer = null;
        switch (ctx.Reader.ReadByte())
        {
            case ClipTowers:
            {
                (var config, tokenizer) = ClipPersistence.Load(ctx, component);
                network = new ZeroShotNetwork(new ClipImageEncoder(new ClipNetwork(config), image.Height, image.Width), torch.zeros(classes.Count, config.ProjectionDim));
                break;
            }
            case LitTowers:
            {
                int inputSize = ctx.Reader.ReadInt32(), textFeatures = ctx.Reader.ReadInt32(), dimension = ctx.Reader.ReadInt32();
                if (inputSize < 32 || textFeatures < 1 || dimension < 1)
                    throw new InvalidDataException($"The {component} in the model file is corrupted (invalid encoder shapes).");
                var lit = ImageTextEncoderTransformer.CreateNetwork(image, inputSize, textFeatures, dimension);
                network = new ZeroShotNetwork(new LitImageEncoder(lit), torch.zeros(classes.Count, dimension));
                break;
            }
            default:
                throw new InvalidDataException($"The {component} in the model file is corrupted (unknown tower kind).");
        }
        NetworkPersistence.LoadWeights(ctx, network, component);
        return new ZeroShotImageClassifierTransformer(env, network, outputs, tokenizer, image, classes, templates);
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);
}
