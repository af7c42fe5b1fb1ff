using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Onnx;
using MLExtensions.Onnx.Export;
using MLExtensions.Onnx.Runtime;
using MLExtensions.Core.Internals;

[assembly: LoadableClass(typeof(OnnxNetworkTransformer), null, typeof(SignatureLoadModel), "MLExtensions ONNX network", OnnxNetworkTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(OnnxNetworkTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions ONNX network", OnnxNetworkTransformer.LoaderSignature)]


namespace MLExtensions.Onnx;

/// <summary>
/// A fitted network of this library scored by ONNX Runtime instead of TorchSharp: it reads the same input columns and
/// produces the same output columns (Score, PredictedLabel, Probability, with the same annotations) as the transformer
/// it was made from, so it drops into the same pipelines, evaluators and prediction engines. Saved and loaded with
/// <c>mlContext.Model.Save/Load</c>; the ONNX model travels inside the model zip. Made by <c>mlContext.Model.ToOnnxRuntime</c>.
/// </summary>
/// <remarks>
/// Thread safety: one <see cref="InferenceSession"/> is shared (ONNX Runtime allows concurrent <c>Run</c> calls); each
/// cursor has its own input buffer. Rows are scored one at a time, as the TorchSharp transformers do.
/// </remarks>
public sealed class OnnxNetworkTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string LoaderSignature = "MLExtOnnxNetwork";

    private readonly NetworkInputReader _input;
    private readonly byte[] _onnxModel;
    private readonly InferenceSession _session;

    private OnnxNetworkTransformer(IHostEnvironment env, NetworkInputReader input, PredictionOutputs outputs, byte[] onnxModel, int intraOpNumThreads)
        : base(env.Register(nameof(OnnxNetworkTransformer)))
    {
        _input = input;
        Outputs = outputs;
        _onnxModel = onnxModel;
        IntraOpNumThreads = intraOpNumThreads;
        _session = OnnxModelStore.Open(onnxModel, intraOpNumThreads, input.OnnxInputNames, ExportedNetwork.LogitsName);
    }

    /// <summary>The prediction task.</summary>
    public PredictionTask Kind => Outputs.Kind;

    /// <summary>Class names of a multiclass model whose label had text key values; otherwise null.</summary>
    public IReadOnlyList<string>? ClassNames => Outputs.ClassNames;

    /// <summary>Threads ONNX Runtime uses inside one row's computation (0 = ONNX Runtime's default, one per core).</summary>
    public int IntraOpNumThreads { get; }

    /// <summary>The ONNX model being run (a copy).</summary>
    public byte[] GetOnnxModel() => (byte[])_onnxModel.Clone();

    internal PredictionOutputs Outputs { get; }

    /// <summary>
    /// Wraps <paramref name="onnxModel"/> — the ONNX form of <paramref name="original"/>'s network, as written by the
    /// exporter (float) or derived from it (e.g. quantized) — so it reads and writes the same columns as <paramref name="original"/>.
    /// </summary>
    internal static OnnxNetworkTransformer Create(IHostEnvironment env, NetworkTransformerBase original, byte[] onnxModel, int intraOpNumThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(onnxModel);
        if (intraOpNumThreads < 0)
            throw new ArgumentOutOfRangeException(nameof(intraOpNumThreads), intraOpNumThreads, "IntraOpNumThreads must be 0 (ONNX Runtime's default) or positive.");
        return new OnnxNetworkTransformer(env, NetworkInputReader.For(original), original.Outputs, onnxModel, intraOpNumThreads);
    }

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXONNXN", LoaderSignature, typeof(OnnxNetworkTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        _input.Save(ctx);
        Outputs.Save(Host, ctx);
        OnnxModelStore.Save(ctx, _onnxModel, IntraOpNumThreads);
    }

    // SignatureLoadModel.
    internal static OnnxNetworkTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        var input = NetworkInputReader.Load(ctx);
        var outputs = PredictionOutputs.Load(env, ctx);
        var (bytes, threads) = OnnxModelStore.Load(ctx);
        return new OnnxNetworkTransformer(env, input, outputs, bytes, threads);
    }

    // SignatureLoadRowMapper: used when the IDataView form of the transform is deserialized.
    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();

    /// <summary>Runs the model on one row's inputs and copies the logits into <paramref name="logits"/>.</summary>
    private void Score(IReadOnlyList<NamedOnnxValue> inputs, float[] logits)
    {
        using var results = _session.Run(inputs, new[] { ExportedNetwork.LogitsName });
        var output = results[0].AsTensor<float>();
        if (output.Length != logits.Length)
            throw new InvalidOperationException($"The ONNX model returned {output.Length} logits per row; the model has {logits.Length} outputs.");
        int i = 0;
        foreach (float v in output)
            logits[i++] = v;
    }

    private sealed class Mapper : MapperBase
    {
        private readonly OnnxNetworkTransformer _owner;
        private readonly int[] _inputIndices;

        public Mapper(OnnxNetworkTransformer owner, DataViewSchema schema)
            : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            owner._input.Validate(schema);
            _inputIndices = owner._input.Columns.Select(n => schema[n].Index).ToArray();
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _owner.Outputs.GetColumns(InputSchema);

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            int count = _owner.Outputs.GetColumns(InputSchema).Length;
            bool any = Enumerable.Range(0, count).Any(activeOutput);
            return column => any && _inputIndices.Contains(column);
        }

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer) =>
            throw new InvalidOperationException("Getters are created together in CreateGetters so that all outputs share one ONNX Runtime call.");

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            // Everything mutable is local to this cursor; the session is shared.
            var read = _owner._input.CreateReader(input);
            var logits = new float[_owner.Outputs.ClassCount];
            long cachedPosition = -1;
            void EnsureOutputs()
            {
                if (input.Position == cachedPosition)
                    return;
                _owner.Score(read(), logits);
                cachedPosition = input.Position;
            }
            return _owner.Outputs.CreateGetters(activeOutput, EnsureOutputs, logits);
        }
    }
}
