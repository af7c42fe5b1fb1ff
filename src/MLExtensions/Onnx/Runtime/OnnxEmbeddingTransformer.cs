using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Internals;
using MLExtensions.Multimodal;
using MLExtensions.Onnx;
using MLExtensions.Onnx.Export;
using MLExtensions.Onnx.Runtime;

[assembly: LoadableClass(typeof(OnnxEmbeddingTransformer), null, typeof(SignatureLoadModel), "MLExtensions ONNX embedding", OnnxEmbeddingTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(OnnxEmbeddingTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions ONNX embedding", OnnxEmbeddingTransformer.LoaderSignature)]

namespace MLExtensions.Onnx;

/// <summary>
/// An embedding transformer of this library (<c>ClipImageEmbedding</c>, <c>ClipTextEmbedding</c>, <c>ImageTextEncoder</c>)
/// run by ONNX Runtime instead of TorchSharp: it reads the same input column (image pixels, or text tokenized with CLIP's
/// tokenizer, which is saved with it) and adds the same L2-normalized embedding column. Made by <c>mlContext.Model.ToOnnxRuntime</c>
/// or <c>mlContext.Model.Quantize</c>; saved and loaded with <c>mlContext.Model.Save/Load</c>, the ONNX model inside the zip.
/// </summary>
/// <remarks>One <see cref="InferenceSession"/> is shared (concurrent <c>Run</c> calls are allowed); rows are embedded one at a time.</remarks>
public sealed class OnnxEmbeddingTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string LoaderSignature = "MLExtOnnxEmbedding";

    private readonly NetworkInputReader _input;
    private readonly byte[] _onnxModel;
    private readonly InferenceSession _session;

    private OnnxEmbeddingTransformer(IHostEnvironment env, NetworkInputReader input, string outputColumnName, int dimension, byte[] onnxModel, int intraOpNumThreads)
        : base(env.Register(nameof(OnnxEmbeddingTransformer)))
    {
        _input = input;
        OutputColumnName = outputColumnName;
        Dimension = dimension;
        _onnxModel = onnxModel;
        IntraOpNumThreads = intraOpNumThreads;
        _session = OnnxModelStore.Open(onnxModel, intraOpNumThreads, input.OnnxInputNames, ExportedEmbedding.EmbeddingName);
    }

    /// <summary>The embedding column added.</summary>
    public string OutputColumnName { get; }

    /// <summary>Length of the embeddings.</summary>
    public int Dimension { get; }

    /// <summary>Threads ONNX Runtime uses inside one row's computation (0 = ONNX Runtime's default).</summary>
    public int IntraOpNumThreads { get; }

    /// <summary>The ONNX model being run (a copy).</summary>
    public byte[] GetOnnxModel() => (byte[])_onnxModel.Clone();

    /// <summary>Wraps <paramref name="onnxModel"/>, the ONNX form of <paramref name="original"/> (float or quantized), with the same columns.</summary>
    internal static OnnxEmbeddingTransformer Create(IHostEnvironment env, ITransformer original, byte[] onnxModel, int intraOpNumThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(onnxModel);
        if (intraOpNumThreads < 0)
            throw new ArgumentOutOfRangeException(nameof(intraOpNumThreads), intraOpNumThreads, "IntraOpNumThreads must be 0 (ONNX Runtime's default) or positive.");
        var (_, output, dimension) = ExportedEmbedding.Columns(original);
        return new OnnxEmbeddingTransformer(env, NetworkInputReader.ForStep(original), output, dimension, onnxModel, intraOpNumThreads);
    }

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXONNXE", LoaderSignature, typeof(OnnxEmbeddingTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        _input.Save(ctx);
        ctx.Writer.Write(OutputColumnName);
        ctx.Writer.Write(Dimension);
        OnnxModelStore.Save(ctx, _onnxModel, IntraOpNumThreads);
    }

    // SignatureLoadModel.
    internal static OnnxEmbeddingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        var input = NetworkInputReader.Load(ctx);
        string output = ctx.Reader.ReadString();
        int dimension = ctx.Reader.ReadInt32();
        if (output.Length == 0 || dimension < 1)
            throw new InvalidDataException($"The ONNX embedding in the model file is corrupted: output column '{output}', dimension {dimension}.");
        var (bytes, threads) = OnnxModelStore.Load(ctx);
        return new OnnxEmbeddingTransformer(env, input, output, dimension, bytes, threads);
    }

    // SignatureLoadRowMapper.
    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();

    private float[] Embed(IReadOnlyList<NamedOnnxValue> inputs)
    {
        using var results = _session.Run(inputs, new[] { ExportedEmbedding.EmbeddingName });
        var output = results[0].AsTensor<float>();
        if (output.Length != Dimension)
            throw new InvalidOperationException($"The ONNX model returned {output.Length} values per row; the embedding has {Dimension}.");
        return output.ToArray();
    }

    private sealed class Mapper : MapperBase
    {
        private readonly OnnxEmbeddingTransformer _owner;
        private readonly int _inputIndex;

        public Mapper(OnnxEmbeddingTransformer owner, DataViewSchema schema) : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            owner._input.Validate(schema);
            _inputIndex = schema[owner._input.Columns[0]].Index;
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
            new[] { new DataViewSchema.DetachedColumn(_owner.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, _owner.Dimension)) };

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput) => column => activeOutput(0) && column == _inputIndex;

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var read = _owner._input.CreateReader(input);
            return EmbeddingRows.VectorGetter(() => _owner.Embed(read()), _owner.Dimension);
        }
    }
}
