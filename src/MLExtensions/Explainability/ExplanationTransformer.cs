using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Explainability;

[assembly: LoadableClass(typeof(ExplanationTransformer), null, typeof(SignatureLoadModel), "MLExtensions explanation", ExplanationTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(ExplanationTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions explanation", ExplanationTransformer.LoaderSignature)]

namespace MLExtensions.Explainability;

/// <summary>
/// Explains a fitted model's predictions row by row. Appends <c>Attributions</c> (one value per slot of the explained
/// column, or per token for text), <c>BaseValue</c>, <c>ConvergenceDelta</c> = Σ Attributions − (f(x) − BaseValue),
/// <c>ExplainedClass</c> (classifiers; the type of the model's PredictedLabel: a key with the same key values for multiclass
/// models, Boolean for binary ones — true when the positive class's score is explained) and <c>Tokens</c> (text).
/// The explained output f is the model's Score: the class probability for multiclass models, the score (logit) of the
/// explained class for binary ones (Score for the positive class, −Score for the negative one), the prediction for regression. Saved with the model it explains (<c>mlContext.Model.Save/Load</c>).
/// </summary>
public sealed class ExplanationTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string LoaderSignature = "MLExtExplanation";

    /// <summary>Name of the attributions column.</summary>
    public const string AttributionsColumn = "Attributions";

    /// <summary>Name of the base value column.</summary>
    public const string BaseValueColumn = "BaseValue";

    /// <summary>Name of the explained class column (classifiers: a key like a multiclass PredictedLabel, Boolean for binary models).</summary>
    public const string ExplainedClassColumn = "ExplainedClass";

    /// <summary>Name of the convergence delta column.</summary>
    public const string ConvergenceDeltaColumn = "ConvergenceDelta";

    /// <summary>Name of the tokens column (text models).</summary>
    public const string TokensColumn = "Tokens";

    private const string ModelEntry = "Model";

    private readonly ITransformer _model;
    private readonly ExplanationOptions _options;
    private readonly float[][] _references;
    private readonly VBuffer<ReadOnlyMemory<char>>? _slotNames;
    private readonly IAttributionEngine _engine;
    private readonly (int Height, int Width)? _image;

    private ExplanationTransformer(IHostEnvironment env, ITransformer model, ExplanationOptions options, string column, float[][] references,
        VBuffer<ReadOnlyMemory<char>>? slotNames, (int Height, int Width)? image, IAttributionEngine engine)
        : base(env.Register(nameof(ExplanationTransformer)))
    {
        _image = image;
        _model = model;
        _options = options;
        InputColumnName = column;
        _references = references;
        _slotNames = slotNames;
        _engine = engine;
    }

    /// <summary>The model being explained.</summary>
    public ITransformer Model => _model;

    /// <summary>The method.</summary>
    public ExplanationMethod Method => _options.Method;

    /// <summary>The explained column.</summary>
    public string InputColumnName { get; }

    internal static string ExplainedColumnName(ExplanationOptions options, NetworkTransformerBase? network) =>
        options.InputColumnName ?? network?.NetworkInputColumns[0] ?? DefaultColumnNames.Features;

    /// <summary>Builds the transformer from the background rows read by the estimator (or the model file).</summary>
    internal static ExplanationTransformer Create(IHostEnvironment env, ITransformer model, NetworkTransformerBase? network, ExplanationOptions options,
        string column, float[][] references, VBuffer<ReadOnlyMemory<char>>? slotNames, (int Height, int Width)? image = null)
    {
        IAttributionEngine engine;
        if (network is null)
        {
            // No references: the explained column is text (an absent word is removed, so the reference is the empty text).
            // An image column: references holds one image, the background's pixel-wise mean (3×H×W RGB planes).
            engine = new KernelShapEngine(model, options, column, references.Length == 0 ? references : ShapReferences(options, references), image);
        }
        else if (network is MLExtensions.Text.TextClassifierTransformer)
        {
            engine = new NetworkAttributionEngine(network, options, references, null);
        }
        else
        {
            var baseline = Baseline(options, references);
            var shapReferences = options.Method is ExplanationMethod.GradientShap or ExplanationMethod.DeepLiftShap ? ShapReferences(options, references) : new[] { baseline };
            engine = new NetworkAttributionEngine(network, options, shapReferences, baseline);
        }
        return new ExplanationTransformer(env, model, options, column, references, slotNames, image, engine);
    }

    /// <summary>The single baseline row of integrated gradients and saliency: the background mean, zeros or the given vector.</summary>
    private static float[] Baseline(ExplanationOptions options, float[][] background)
    {
        int size = background[0].Length;
        switch (options.Baseline)
        {
            case BaselineKind.Zeros:
                return new float[size];
            case BaselineKind.Given:
                if (options.BaselineValues!.Length != size)
                    throw new ArgumentOutOfRangeException(nameof(ExplanationOptions.BaselineValues), options.BaselineValues.Length,
                        $"BaselineValues must have one value per slot of the explained column ({size}); found {options.BaselineValues.Length}.");
                return (float[])options.BaselineValues.Clone();
            default:
                var mean = new double[size];
                foreach (var row in background)
                {
                    for (int i = 0; i < size; i++)
                        mean[i] += row[i];
                }
                return mean.Select(m => (float)(m / background.Length)).ToArray();
        }
    }

    /// <summary>The references of the SHAP methods: the background rows, or the single zero / given baseline row.</summary>
    private static float[][] ShapReferences(ExplanationOptions options, float[][] background) =>
        options.Baseline == BaselineKind.Background ? background : new[] { Baseline(options, background) };

    /// <summary>1.2 added the explained image size after the background's shape; 1.1 files (no images) still load.</summary>
    private const uint ImageSizeVersion = 0x00010002;

    private static VersionInfo GetVersionInfo() =>
        NetworkPersistence.Version("MLXEXPLN", LoaderSignature, typeof(ExplanationTransformer), written: ImageSizeVersion, readable: ImageSizeVersion);

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        NetworkPersistence.SaveOptions(ctx, _options);
        ctx.Writer.Write(InputColumnName);
        ctx.Writer.Write(_references.Length);
        ctx.Writer.Write(_references.Length == 0 ? 0 : _references[0].Length);
        // The size of an explained MLImage column (0 × 0 for other columns).
        ctx.Writer.Write(_image?.Height ?? 0);
        ctx.Writer.Write(_image?.Width ?? 0);
        foreach (var row in _references)
        {
            foreach (float v in row)
                ctx.Writer.Write(v);
        }
        ctx.Writer.Write(_slotNames is not null);
        if (_slotNames is { } names)
        {
            foreach (var name in names.DenseValues())
                ctx.Writer.Write(name.ToString());
        }
        ctx.SaveModel(_model, ModelEntry);
    }

    internal static ExplanationTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        var options = NetworkPersistence.LoadOptions<ExplanationOptions>(ctx, LoaderSignature);
        string column = ctx.Reader.ReadString();
        int rows = ctx.Reader.ReadInt32(), size = ctx.Reader.ReadInt32();
        if (rows < 0 || size < 0 || (rows > 0 && size == 0))
            throw new InvalidDataException($"The explanation in the model file is corrupted: {rows} background rows of {size} values.");
        bool hasImageSize = ctx.Header.ModelVerWritten >= ImageSizeVersion;
        int height = hasImageSize ? ctx.Reader.ReadInt32() : 0, width = hasImageSize ? ctx.Reader.ReadInt32() : 0;
        if (height < 0 || width < 0 || (height > 0 && ImagePixels.Channels * height * width != size))
            throw new InvalidDataException($"The explanation in the model file is corrupted: {width}×{height} images but background rows of {size} values.");
        (int Height, int Width)? image = height > 0 ? (height, width) : null;
        var references = new float[rows][];
        for (int r = 0; r < rows; r++)
        {
            references[r] = new float[size];
            for (int i = 0; i < size; i++)
                references[r][i] = ctx.Reader.ReadSingle();
        }
        VBuffer<ReadOnlyMemory<char>>? slotNames = null;
        if (ctx.Reader.ReadBoolean())
            slotNames = new VBuffer<ReadOnlyMemory<char>>(size, Enumerable.Range(0, size).Select(_ => ctx.Reader.ReadString().AsMemory()).ToArray());
        ctx.LoadModel<ITransformer, SignatureLoadModel>(env, out var model, ModelEntry);
        var network = ExplainPredictionsEstimator.FindNetwork(model, options.Method);
        if (network is not null)
            TorchNativeLoader.EnsureLoaded();
        return Create(env, model, network, options, column, references, slotNames, image);
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);

    /// <inheritdoc />
    public override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>Releases native memory held by the explanation (not the explained model's).</summary>
    public void Dispose() => _engine.Dispose();

    private sealed class Mapper : MapperBase
    {
        private readonly ExplanationTransformer _owner;
        private readonly int[] _inputIndices;
        private readonly DataViewSchema.DetachedColumn[] _columns;
        private readonly ModelOutputs _outputs;

        public Mapper(ExplanationTransformer owner, DataViewSchema schema) : base(owner.Host.Register(nameof(Mapper)), schema, owner)
        {
            _owner = owner;
            owner._engine.Validate(schema);
            _inputIndices = owner._engine.InputColumns(schema).Select(n => schema[n].Index).ToArray();
            _outputs = owner._engine.OutputsFor(schema);
            _columns = CreateColumns(owner, schema, _outputs);
        }

        private static DataViewSchema.DetachedColumn[] CreateColumns(ExplanationTransformer owner, DataViewSchema schema, ModelOutputs outputs)
        {
            var engine = owner._engine;
            var attributions = new DataViewSchema.Annotations.Builder();
            if (engine.AttributionSize > 0)
            {
                var names = ExplainedColumn.SlotNames(schema, owner.InputColumnName, engine.AttributionSize) ?? owner._slotNames;
                if (names is { } slotNames)
                    attributions.AddSlotNames(engine.AttributionSize, (ref VBuffer<ReadOnlyMemory<char>> dst) => slotNames.CopyTo(ref dst));
            }
            var columns = new List<DataViewSchema.DetachedColumn>
            {
                new(AttributionsColumn, new VectorDataViewType(NumberDataViewType.Single, engine.AttributionSize), attributions.ToAnnotations()),
                new(BaseValueColumn, NumberDataViewType.Single),
                new(ConvergenceDeltaColumn, NumberDataViewType.Single),
            };
            if (outputs.ExplainedClassType is { } classType)
            {
                var keyAnnotations = new DataViewSchema.Annotations.Builder();
                if (outputs.PredictedLabelAnnotations?.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is { } keyValues)
                    keyAnnotations.Add(keyValues.Name, keyValues.Type, CopyKeyValues(outputs.PredictedLabelAnnotations, keyValues));
                columns.Add(new(ExplainedClassColumn, classType, keyAnnotations.ToAnnotations()));
            }
            if (engine.HasTokens)
                columns.Add(new(TokensColumn, new VectorDataViewType(TextDataViewType.Instance)));
            return columns.ToArray();
        }

        private static Delegate CopyKeyValues(DataViewSchema.Annotations annotations, DataViewSchema.Column keyValues)
        {
            var method = typeof(Mapper).GetMethod(nameof(KeyValuesGetter), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                .MakeGenericMethod(keyValues.Type.GetItemType().RawType);
            return (Delegate)method.Invoke(null, new object[] { annotations, keyValues })!;
        }

        private static ValueGetter<VBuffer<T>> KeyValuesGetter<T>(DataViewSchema.Annotations annotations, DataViewSchema.Column keyValues) =>
            (ref VBuffer<T> dst) => annotations.GetValue(keyValues.Name, ref dst);

        public override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() => _columns;

        public override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = Enumerable.Range(0, _columns.Length).Any(activeOutput);
            return column => any && _inputIndices.Contains(column);
        }

        public override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer) =>
            throw new InvalidOperationException("Getters are created together in CreateGetters so that all outputs share one explanation.");

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var getters = new Delegate[_columns.Length];
            if (!Enumerable.Range(0, _columns.Length).Any(activeOutput))
                return getters;
            // Per cursor: the explainer, the last explanation and its row position.
            var explain = _owner._engine.CreateRowExplainer(input);
            RowExplanation? current = null;
            long position = -1;
            RowExplanation Current()
            {
                if (current is null || input.Position != position)
                {
                    current = explain();
                    position = input.Position;
                }
                return current;
            }
            for (int i = 0; i < _columns.Length; i++)
            {
                if (!activeOutput(i))
                    continue;
                getters[i] = _columns[i].Name switch
                {
                    AttributionsColumn => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                    {
                        var values = Current().Attributions;
                        var editor = VBufferEditor.Create(ref dst, values.Length);
                        values.CopyTo(editor.Values);
                        dst = editor.Commit();
                    }),
                    BaseValueColumn => (ValueGetter<float>)((ref float v) => v = (float)Current().BaseValue),
                    ConvergenceDeltaColumn => (ValueGetter<float>)((ref float v) => v = Current().ConvergenceDelta),
                    ExplainedClassColumn when _outputs.IsBinary => (ValueGetter<bool>)((ref bool v) => v = Current().Target == 1),
                    ExplainedClassColumn => (ValueGetter<uint>)((ref uint v) => v = (uint)Current().Target + 1),
                    _ => (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) =>
                    {
                        var tokens = Current().Tokens;
                        var editor = VBufferEditor.Create(ref dst, tokens.Length);
                        for (int t = 0; t < tokens.Length; t++)
                            editor.Values[t] = tokens[t].AsMemory();
                        dst = editor.Commit();
                    }),
                };
            }
            return getters;
        }
    }
}
