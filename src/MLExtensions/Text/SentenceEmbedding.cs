using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Text;
using TorchSharp;
using static TorchSharp.torch;
using MLExtensions.Core.Internals;

[assembly: LoadableClass(typeof(SentenceEmbeddingTransformer), null, typeof(SignatureLoadModel), "MLExtensions sentence embedding", SentenceEmbeddingTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(SentenceEmbeddingTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions sentence embedding", SentenceEmbeddingTransformer.LoaderSignature)]


namespace MLExtensions.Text;

/// <summary>Options of <c>mlContext.Transforms.Text.SentenceEmbedding</c>.</summary>
public sealed class SentenceEmbeddingOptions
{
    /// <summary>The encoder: <see cref="TextEncoderSource.MiniLM"/> (default, embedded) or <see cref="TextEncoderSource.HuggingFaceCheckpoint"/>.</summary>
    public TextEncoderSource Encoder { get; set; } = TextEncoderSource.MiniLM;

    /// <summary>Checkpoint folder for <see cref="TextEncoderSource.HuggingFaceCheckpoint"/>.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Longest token sequence; longer texts are truncated. Default 256 (MiniLM's training length).</summary>
    public int MaxLength { get; set; } = 256;

    /// <summary>Pooling of the hidden states. Default <see cref="TextPooling.Mean"/>.</summary>
    public TextPooling Pooling { get; set; } = TextPooling.Mean;

    /// <summary>Scale each embedding to unit length (cosine similarity becomes a dot product). Default true.</summary>
    public bool Normalize { get; set; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (MaxLength < 3)
            throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, $"MaxLength must be ≥ 3; found {MaxLength}.");
        if (Encoder == TextEncoderSource.Scratch)
            throw new ArgumentOutOfRangeException(nameof(Encoder), Encoder, "A sentence embedding needs a pretrained encoder (MiniLM or HuggingFaceCheckpoint).");
        if (Encoder == TextEncoderSource.HuggingFaceCheckpoint && string.IsNullOrWhiteSpace(CheckpointPath))
            throw new ArgumentException("Encoder = HuggingFaceCheckpoint needs CheckpointPath to name the checkpoint folder.", nameof(CheckpointPath));
    }
}

/// <summary>Creates a <see cref="SentenceEmbeddingTransformer"/>; fitting only loads the frozen encoder (no training).</summary>
public sealed class SentenceEmbeddingEstimator : IEstimator<SentenceEmbeddingTransformer>
{
    private readonly IHost _host;
    private readonly string _output;
    private readonly string _input;
    private readonly SentenceEmbeddingOptions _options;

    internal SentenceEmbeddingEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, SentenceEmbeddingOptions options)
    {
        _host = env.Register(nameof(SentenceEmbeddingEstimator));
        Check.NotEmpty(outputColumnName, nameof(outputColumnName));
        Check.NotEmpty(inputColumnName, nameof(inputColumnName));
        options.Validate();
        _output = outputColumnName;
        _input = inputColumnName;
        _options = options;
    }

    /// <inheritdoc />
    public SentenceEmbeddingTransformer Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        new TextColumns(_input, null).Validate(input.Schema);
        TorchNativeLoader.EnsureLoaded();
        var spec = TextEncoders.Resolve(_options.Encoder, _options.CheckpointPath, null, null, true);
        if (_options.MaxLength > spec.Config.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(_options.MaxLength), _options.MaxLength, $"MaxLength {_options.MaxLength} exceeds the encoder's {spec.Config.MaxPositions} positions.");
        using var generator = new Generator(0, CPU);
        var encoder = spec.Build(generator);
        return new SentenceEmbeddingTransformer(_host, encoder, spec.CreateTokenizer(), _options, _input, _output);
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(_input, out var column))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The text column '{_input}' was not found in the input schema.");
        if (column.ItemType is not TextDataViewType || column.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The text column '{_input}' must be String (text); found {column.ItemType}.");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_output] = new SchemaShape.Column(_output, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}

/// <summary>
/// A frozen BERT-family encoder that maps a text column to a pooled embedding vector (384 floats for MiniLM), usable as
/// features for any ML.NET trainer. Saved with its vocabulary and weights.
/// </summary>
public sealed class SentenceEmbeddingTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string LoaderSignature = "MLExtSentenceEmbedding";

    private readonly BertEncoder _encoder;
    private readonly WordPieceTokenizer _tokenizer;
    private readonly SentenceEmbeddingOptions _options;
    private readonly string _input;
    private readonly string _output;

    internal SentenceEmbeddingTransformer(IHostEnvironment env, BertEncoder encoder, WordPieceTokenizer tokenizer, SentenceEmbeddingOptions options, string input, string output)
        : base(env.Register(nameof(SentenceEmbeddingTransformer)))
    {
        _encoder = encoder;
        _encoder.eval();
        _tokenizer = tokenizer;
        _options = options;
        _input = input;
        _output = output;
    }

    /// <summary>Length of the embedding vectors.</summary>
    public int Dimension => _encoder.Config.HiddenSize;

    // For ONNX export (Onnx/Export/ExportedEmbedding).
    internal BertEncoder Encoder => _encoder;

    internal WordPieceTokenizer Tokenizer => _tokenizer;

    internal SentenceEmbeddingOptions Options => _options;

    internal string InputColumnName => _input;

    internal string OutputColumnName => _output;

    /// <summary>Embeddings of a batch of texts (same computation as the output column, batched for speed).</summary>
    public float[][] Embed(IReadOnlyList<string?> texts)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var packed = TokenBatchSource.Pack(texts.Select(t => _tokenizer.Encode(t, null, _options.MaxLength)).ToList(), _tokenizer.PadId);
        var vectors = Pool(packed);
        var flat = vectors.data<float>().ToArray();
        return Enumerable.Range(0, texts.Count).Select(i => flat.AsSpan(i * Dimension, Dimension).ToArray()).ToArray();
    }

    private Tensor Pool(Tensor packed)
    {
        var input = TextClassifierNetwork.Unpack(packed);
        var hidden = _encoder.call(input);
        var pooled = _options.Pooling == TextPooling.Cls ? hidden.select(1, 0) : BertEncoder.MeanPool(hidden, input.AttentionMask);
        return _options.Normalize ? nn.functional.normalize(pooled, 2.0, 1L) : pooled;
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXSNEMB", LoaderSignature, typeof(SentenceEmbeddingTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        NetworkPersistence.SaveOptions(ctx, _options);
        NetworkPersistence.SaveOptions(ctx, _encoder.Config);
        ctx.Writer.Write(_input);
        ctx.Writer.Write(_output);
        TokenizerPersistence.Save(ctx, _tokenizer);
        NetworkPersistence.SaveWeights(ctx, _encoder);
    }

    internal static SentenceEmbeddingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        var options = NetworkPersistence.LoadOptions<SentenceEmbeddingOptions>(ctx, LoaderSignature);
        var config = NetworkPersistence.LoadOptions<BertConfig>(ctx, LoaderSignature);
        string input = ctx.Reader.ReadString(), output = ctx.Reader.ReadString();
        var tokenizer = TokenizerPersistence.Load(ctx, config, "sentence embedding");
        var encoder = new BertEncoder(config);
        NetworkPersistence.LoadWeights(ctx, encoder, LoaderSignature);
        return new SentenceEmbeddingTransformer(env, encoder, tokenizer, options, input, output);
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Releases the encoder's native memory.</summary>
    public void Dispose() => _encoder.Dispose();

    private sealed class Mapper : MapperBase
    {
        private readonly SentenceEmbeddingTransformer _owner;
        private readonly int _inputIndex;

        public Mapper(SentenceEmbeddingTransformer owner, DataViewSchema schema) : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            new TextColumns(owner._input, null).Validate(schema);
            _inputIndex = schema[owner._input].Index;
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
            new[] { new DataViewSchema.DetachedColumn(_owner._output, new VectorDataViewType(NumberDataViewType.Single, _owner.Dimension)) };

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) => column => activeOutput(0) && column == _inputIndex;

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var getText = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[_inputIndex]);
            ReadOnlyMemory<char> text = default;
            int dimension = _owner.Dimension;
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                getText(ref text);
                var vector = _owner.Embed(new[] { text.ToString() })[0];
                var editor = VBufferEditor.Create(ref dst, dimension);
                vector.CopyTo(editor.Values);
                dst = editor.Commit();
            });
        }
    }
}
