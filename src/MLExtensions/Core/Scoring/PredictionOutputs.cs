using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Data.IO;
using Microsoft.ML.Runtime;

namespace MLExtensions.Core;

/// <summary>
/// The output columns of a network trained for a <see cref="PredictionTask"/>, with the same names, types and
/// annotations as ML.NET's built-in trainers, so Evaluate, CrossValidate, MapKeyToValue and PredictionEngine
/// work unchanged. Shared by every transformer in the library.
/// </summary>
/// <remarks>
/// Multiclass: Score = softmax probabilities (the evaluator's log-loss reads Score[label] as a probability),
/// PredictedLabel = arg-max + 1 as a key carrying the label's KeyValues. Binary: Score = the logit (the
/// evaluator thresholds Score at 0 and ranks by it), Probability = sigmoid(logit), PredictedLabel = logit &gt; 0.
/// Regression: Score = the output.
/// </remarks>
internal sealed class PredictionOutputs
{
    private readonly DataViewType? _keyValuesType;
    private readonly object? _keyValues; // VBuffer<T> of the label's KeyValues (boxed), multiclass only

    private PredictionOutputs(PredictionTask kind, int classCount, DataViewType? keyValuesType, object? keyValues)
    {
        Kind = kind;
        ClassCount = classCount;
        _keyValuesType = keyValuesType;
        _keyValues = keyValues;
    }

    public PredictionTask Kind { get; }

    /// <summary>Network outputs per row: K for multiclass, 1 otherwise.</summary>
    public int ClassCount { get; }

    /// <summary>Captures what the outputs need from the training label column.</summary>
    public static PredictionOutputs FromLabel(LabelBinding label)
    {
        if (label.Kind != PredictionTask.MulticlassClassification)
            return new PredictionOutputs(label.Kind, 1, null, null);
        var keyValues = label.Column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (keyValues is null)
            return new PredictionOutputs(label.Kind, label.ClassCount, null, null);
        var type = keyValues.Value.Type;
        object values = typeof(PredictionOutputs).GetMethod(nameof(ReadKeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(type.GetItemType().RawType).Invoke(null, new object[] { label.Column.Annotations })!;
        return new PredictionOutputs(label.Kind, label.ClassCount, type, values);
    }

    /// <summary>Multiclass outputs for classes known by name only (no label column), e.g. a zero-shot classifier's.</summary>
    public static PredictionOutputs FromClassNames(IReadOnlyList<string> names)
    {
        var values = new VBuffer<ReadOnlyMemory<char>>(names.Count, names.Select(n => n.AsMemory()).ToArray());
        return new PredictionOutputs(PredictionTask.MulticlassClassification, names.Count, new VectorDataViewType(TextDataViewType.Instance, names.Count), values);
    }

    private static object ReadKeyValues<T>(DataViewSchema.Annotations annotations)
    {
        VBuffer<T> values = default;
        annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref values);
        return values;
    }

    /// <summary>The class names (from text KeyValues), or null.</summary>
    public string[]? ClassNames =>
        _keyValues is VBuffer<ReadOnlyMemory<char>> names ? names.DenseValues().Select(n => n.ToString()).ToArray() : null;

    /// <summary>The output columns, as ML.NET's scorer for the same task makes them.</summary>
    public DataViewSchema.DetachedColumn[] GetColumns(DataViewSchema inputSchema)
    {
        // Each scorer gets a fresh set id, one above the largest in the input, so stacked scorers stay apart.
        inputSchema.GetMaxAnnotationKind(out int maxId, AnnotationUtils.Kinds.ScoreColumnSetId);
        uint setId = (uint)maxId + 1;
        string kind = Kind switch
        {
            PredictionTask.Regression => AnnotationUtils.Const.ScoreColumnKind.Regression,
            PredictionTask.BinaryClassification => AnnotationUtils.Const.ScoreColumnKind.BinaryClassification,
            _ => AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification,
        };

        DataViewSchema.Annotations.Builder ScoreAnnotations(string valueKind)
        {
            var b = new DataViewSchema.Annotations.Builder();
            b.Add(AnnotationUtils.Kinds.ScoreColumnSetId, AnnotationUtils.ScoreColumnSetIdType, (ref uint v) => v = setId);
            b.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = kind.AsMemory());
            b.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = valueKind.AsMemory());
            return b;
        }

        switch (Kind)
        {
            case PredictionTask.Regression:
                return new[] { new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, NumberDataViewType.Single, ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.Score).ToAnnotations()) };
            case PredictionTask.BinaryClassification:
            {
                var probability = ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.Probability);
                probability.Add(AnnotationUtils.Kinds.IsNormalized, BooleanDataViewType.Instance, (ref bool v) => v = true);
                return new[]
                {
                    new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, NumberDataViewType.Single, ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.Score).ToAnnotations()),
                    new DataViewSchema.DetachedColumn(DefaultColumnNames.Probability, NumberDataViewType.Single, probability.ToAnnotations()),
                    new DataViewSchema.DetachedColumn(DefaultColumnNames.PredictedLabel, BooleanDataViewType.Instance, ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.PredictedLabel).ToAnnotations()),
                };
            }
            default:
            {
                var score = ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.Score);
                var predicted = ScoreAnnotations(AnnotationUtils.Const.ScoreValueKind.PredictedLabel);
                if (_keyValuesType is not null)
                {
                    AddKeyValues(score, AnnotationUtils.Kinds.TrainingLabelValues);
                    if (_keyValuesType.GetItemType() is TextDataViewType)
                        AddKeyValues(score, AnnotationUtils.Kinds.SlotNames);
                    AddKeyValues(predicted, AnnotationUtils.Kinds.KeyValues);
                }
                return new[]
                {
                    new DataViewSchema.DetachedColumn(DefaultColumnNames.Score, new VectorDataViewType(NumberDataViewType.Single, ClassCount), score.ToAnnotations()),
                    new DataViewSchema.DetachedColumn(DefaultColumnNames.PredictedLabel, new KeyDataViewType(typeof(uint), ClassCount), predicted.ToAnnotations()),
                };
            }
        }
    }

    private void AddKeyValues(DataViewSchema.Annotations.Builder builder, string kind)
    {
        typeof(PredictionOutputs).GetMethod(nameof(AddKeyValuesCore), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .MakeGenericMethod(_keyValuesType!.GetItemType().RawType).Invoke(this, new object[] { builder, kind });
    }

    private void AddKeyValuesCore<T>(DataViewSchema.Annotations.Builder builder, string kind)
    {
        var values = (VBuffer<T>)_keyValues!;
        builder.Add(kind, _keyValuesType!, (ref VBuffer<T> dst) => values.CopyTo(ref dst));
    }

    /// <summary>The estimator-side description of the same columns (for <c>GetOutputSchema</c>).</summary>
    public static SchemaShape.Column[] GetShape(PredictionTask kind, SchemaShape.Column label)
    {
        switch (kind)
        {
            case PredictionTask.Regression:
                return new[] { new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation())) };
            case PredictionTask.BinaryClassification:
                return new[]
                {
                    new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation())),
                    new SchemaShape.Column(DefaultColumnNames.Probability, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation(true))),
                    new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false, new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation())),
                };
            default:
                var predictedAnnotations = new SchemaShape(label.Annotations.Where(a => a.Name == AnnotationUtils.Kinds.KeyValues).Concat(AnnotationUtils.GetTrainerOutputAnnotation()));
                return new[]
                {
                    new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, new SchemaShape(AnnotationUtils.AnnotationsForMulticlassScoreColumn(label))),
                    new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, predictedAnnotations),
                };
        }
    }

    /// <summary>
    /// Getters for the active output columns, all reading the network outputs that <paramref name="ensureOutputs"/>
    /// computes (once per row) into <paramref name="outputs"/>.
    /// </summary>
    public Delegate[] CreateGetters(Func<int, bool> activeOutput, Action ensureOutputs, float[] outputs)
    {
        var getters = new Delegate[Kind switch { PredictionTask.Regression => 1, PredictionTask.BinaryClassification => 3, _ => 2 }];
        switch (Kind)
        {
            case PredictionTask.Regression:
                if (activeOutput(0))
                    getters[0] = (ValueGetter<float>)((ref float v) => { ensureOutputs(); v = outputs[0]; });
                break;
            case PredictionTask.BinaryClassification:
                if (activeOutput(0))
                    getters[0] = (ValueGetter<float>)((ref float v) => { ensureOutputs(); v = outputs[0]; });
                if (activeOutput(1))
                    getters[1] = (ValueGetter<float>)((ref float v) => { ensureOutputs(); v = Sigmoid(outputs[0]); });
                if (activeOutput(2))
                    getters[2] = (ValueGetter<bool>)((ref bool v) => { ensureOutputs(); v = outputs[0] > 0; });
                break;
            default:
                int k = ClassCount;
                var probabilities = new float[k];
                if (activeOutput(0))
                {
                    getters[0] = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                    {
                        ensureOutputs();
                        Softmax(outputs, probabilities);
                        var editor = VBufferEditor.Create(ref dst, k);
                        probabilities.CopyTo(editor.Values);
                        dst = editor.Commit();
                    });
                }
                if (activeOutput(1))
                    getters[1] = (ValueGetter<uint>)((ref uint v) => { ensureOutputs(); v = (uint)ArgMax(outputs) + 1; });
                break;
        }
        return getters;
    }

    public static float Sigmoid(float x) => (float)(1.0 / (1.0 + Math.Exp(-x)));

    public static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits)
            max = Math.Max(max, l);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++)
            sum += probabilities[i] = MathF.Exp(logits[i] - max);
        for (int i = 0; i < logits.Length; i++)
            probabilities[i] = (float)(probabilities[i] / sum);
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
                best = i;
        }
        return best;
    }

    /// <summary>Writes kind, class count and label KeyValues (with their type, through ML.NET's BinarySaver).</summary>
    public void Save(IHostEnvironment env, ModelSaveContext ctx)
    {
        ctx.Writer.Write((int)Kind);
        ctx.Writer.Write(ClassCount);
        ctx.Writer.Write(_keyValuesType is not null);
        if (_keyValuesType is null)
            return;
        var saver = new BinarySaver(env, new BinarySaver.Arguments());
        typeof(PredictionOutputs).GetMethod(nameof(WriteKeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .MakeGenericMethod(_keyValuesType.GetItemType().RawType).Invoke(this, new object[] { saver, ctx.Writer.BaseStream });
    }

    private void WriteKeyValues<T>(BinarySaver saver, Stream stream)
    {
        var values = (VBuffer<T>)_keyValues!;
        if (!saver.TryWriteTypeAndValue(stream, _keyValuesType!, ref values, out _))
            throw new InvalidOperationException($"Cannot save label key values of type {_keyValuesType}.");
    }

    public static PredictionOutputs Load(IHostEnvironment env, ModelLoadContext ctx)
    {
        var kind = (PredictionTask)ctx.Reader.ReadInt32();
        if (!Enum.IsDefined(kind))
            throw new InvalidDataException($"The model file is corrupted: unknown prediction kind {(int)kind}.");
        int classCount = ctx.Reader.ReadInt32();
        if (classCount < 1 || (kind == PredictionTask.MulticlassClassification && classCount < 2))
            throw new InvalidDataException($"The model file is corrupted: {classCount} outputs for {kind}.");
        if (!ctx.Reader.ReadBoolean())
            return new PredictionOutputs(kind, classCount, null, null);
        var saver = new BinarySaver(env, new BinarySaver.Arguments());
        if (!saver.TryLoadTypeAndValue(ctx.Reader.BaseStream, out var type, out object? value) || type is null || value is null)
            throw new InvalidDataException("The model file is corrupted: the label key values cannot be read.");
        return new PredictionOutputs(kind, classCount, type, value);
    }
}
