using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;
using MLExtensions.Onnx.Export;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Base of every fitted network in the library: an ML.NET row-to-row transformer that turns input columns
/// into a tensor, runs the network and emits the standard prediction columns (see <see cref="PredictionOutputs"/>).
/// Subclasses say which columns they read and how a row becomes a tensor; saving, scoring and thread safety live here.
/// </summary>
/// <remarks>
/// Thread safety: ML.NET calls getters from several cursors at once and <c>PredictionEngine</c>s from a pool
/// share this transformer. All mutable state lives in the getters of one cursor; the network is only read
/// (evaluation mode, no gradients), which libtorch allows concurrently.
/// </remarks>
public abstract class NetworkTransformerBase : RowToRowTransformerBase, IDisposable
{
    private protected NetworkTransformerBase(IHost host, nn.Module<Tensor, Tensor> network, PredictionOutputs outputs, ScoringPrecision precision)
        : base(host)
    {
        Network = network;
        Outputs = outputs;
        ScoringPrecision = precision;
        network.eval();
        // The hooks stay for the model's lifetime; they compute in bfloat16 only inside Forward's autocast scope.
        if (precision == ScoringPrecision.BFloat16)
            _autocast = Autocast.Attach(network);
    }

    private readonly IDisposable? _autocast;

    /// <summary>The number format the network scores in (from the trainer's options, saved with the model).</summary>
    public ScoringPrecision ScoringPrecision { get; }

    /// <summary>Opens the autocast scope for <see cref="ScoringPrecision"/> (a no-op scope for float32).</summary>
    internal IDisposable EnterScoringPrecision() => Autocast.Enter(ScoringPrecision == ScoringPrecision.BFloat16 ? ScalarType.BFloat16 : null);

    /// <summary>The trained network (evaluation mode). Treat it as read-only: it is shared by all predictions.</summary>
    public nn.Module<Tensor, Tensor> Network { get; }

    /// <summary>The prediction task.</summary>
    public PredictionTask Kind => Outputs.Kind;

    /// <summary>Class names of a multiclass model whose label had text key values; otherwise null.</summary>
    public IReadOnlyList<string>? ClassNames => Outputs.ClassNames;

    internal PredictionOutputs Outputs { get; }

    /// <summary>Names of the input columns the network reads.</summary>
    private protected abstract IReadOnlyList<string> InputColumnNames { get; }

    /// <summary>Checks that <paramref name="schema"/> has the inputs with the trained types and sizes; throws otherwise.</summary>
    private protected abstract void ValidateInputSchema(DataViewSchema schema);

    /// <summary>
    /// Creates, for one cursor, a function that turns the current row into the network's input tensor (a batch
    /// of one row). The function is called inside a dispose scope, so the tensor may be temporary.
    /// </summary>
    private protected abstract Func<Tensor> CreateRowInput(DataViewRow row);

    /// <summary>A row input for networks that take one flat float vector per row, read by <paramref name="read"/>.</summary>
    private protected static Func<Tensor> FloatRowInput(int size, long[] shape, Action<float[]> read)
    {
        var buffer = new float[size];
        return () =>
        {
            read(buffer);
            return torch.tensor(buffer, shape);
        };
    }

    /// <summary>Runs the network on one row's input and writes its raw outputs (logits) to <paramref name="outputs"/>.</summary>
    internal void Forward(Func<Tensor> input, float[] outputs)
    {
        ThrowIfDisposed();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var precision = EnterScoringPrecision();
        var y = Network.call(input());
        y.data<float>().CopyTo(outputs, 0);
    }

    /// <summary>The columns the network reads, for code that runs the network outside a cursor's getters (e.g. a distillation teacher).</summary>
    internal IReadOnlyList<string> NetworkInputColumns => InputColumnNames;

    /// <summary>Whether <see cref="PadRowInputs"/> can join row inputs of different shapes (text networks can; others batch equal shapes only).</summary>
    internal virtual bool CanPadRowInputs => false;

    /// <summary>
    /// Joins row inputs of different shapes (each a batch of one from <see cref="CreateNetworkInput"/>) into one padded batch
    /// that gives every row the outputs it would get alone. Text networks pad to the longest row and mask the padding.
    /// </summary>
    internal virtual Tensor PadRowInputs(IReadOnlyList<Tensor> rows) =>
        throw new NotSupportedException($"{GetType().Name} cannot pad row inputs of different shapes.");

    /// <summary>Checks the schema of <paramref name="row"/> and returns a per-cursor row input, as the mapper does.</summary>
    internal Func<Tensor> CreateNetworkInput(DataViewRow row)
    {
        ValidateInputSchema(row.Schema);
        return CreateRowInput(row);
    }

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Releases the network's native memory. Safe to call more than once.</summary>
    /// <remarks>
    /// ML.NET's <c>PredictionEngine.Dispose</c> disposes the model it was created from (the whole transformer chain), so
    /// disposing an engine ends the model for every other engine and cursor too. Keep engines for the model's lifetime, or
    /// pool them without disposing them (samples/MLExtensions.WebApi does); using the model afterwards throws
    /// <see cref="ObjectDisposedException"/> saying so.
    /// </remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _autocast?.Dispose();
        Network.Dispose();
        GC.SuppressFinalize(this);
    }

    private int _disposed;

    /// <summary>Throws a clear error instead of libtorch's "empty handle" when a disposed model is used.</summary>
    private protected void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) == 1)
            throw new ObjectDisposedException(GetType().Name,
                $"This {GetType().Name} has been disposed, so its network's memory is gone. Note that disposing a PredictionEngine " +
                "disposes the model it was created from (ML.NET's behaviour): keep engines for the model's lifetime instead of disposing them after each use.");
    }

    // ISaveAsOnnx lets ML.NET's ConvertToOnnx export pipelines that contain the network (see PipelineOnnxExport).
    private sealed class Mapper : MapperBase, ISaveAsOnnx
    {
        private readonly NetworkTransformerBase _owner;
        private readonly int[] _inputIndices;

        public Mapper(NetworkTransformerBase owner, DataViewSchema schema)
            : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            owner.ValidateInputSchema(schema);
            _inputIndices = owner.InputColumnNames.Select(n => schema[n].Index).ToArray();
        }

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _owner.Outputs.GetColumns(InputSchema);

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            int count = _owner.Outputs.GetColumns(InputSchema).Length;
            bool any = Enumerable.Range(0, count).Any(activeOutput);
            return column => any && _inputIndices.Contains(column);
        }

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public bool CanSaveOnnx(OnnxContext ctx) => PipelineOnnxExport.CanSave(_owner);

        public void SaveAsOnnx(OnnxContext ctx) => PipelineOnnxExport.Save(_owner, ctx, InputSchema);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer) =>
            throw new InvalidOperationException("Getters are created together in CreateGetters so that all outputs share one forward pass.");

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            // Everything mutable is local to this cursor: the input buffer, the outputs and the cached position.
            var rowInput = _owner.CreateRowInput(input);
            var outputs = new float[_owner.Outputs.ClassCount];
            long cachedPosition = -1;
            void EnsureOutputs()
            {
                if (input.Position == cachedPosition)
                    return;
                _owner.Forward(rowInput, outputs);
                cachedPosition = input.Position;
            }
            return _owner.Outputs.CreateGetters(activeOutput, EnsureOutputs, outputs);
        }
    }
}
