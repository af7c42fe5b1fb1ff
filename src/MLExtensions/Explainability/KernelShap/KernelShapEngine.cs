using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>
/// Model-agnostic KernelSHAP: the model is scored through <c>Transform</c> on synthetic rows that take the explained row's
/// values for the players of a coalition and a reference row's values for the others; a coalition's value is the mean
/// output over the references (then linked). The model must compute its prediction from the explained column alone.
/// </summary>
internal sealed class KernelShapEngine : IAttributionEngine
{
    private readonly IHostEnvironment _env;
    private readonly ITransformer _model;
    private readonly ExplanationOptions _options;
    private readonly string _column;
    private readonly float[][] _references;
    private readonly int[][] _groups;
    private readonly SchemaDefinition _definition;
    private readonly double[] _expected; // linked mean output over the references, per explainable target

    public KernelShapEngine(IHostEnvironment env, ITransformer model, ExplanationOptions options, string column, float[][] references, VBuffer<ReadOnlyMemory<char>>? slotNames)
    {
        _env = env;
        _model = model;
        _options = options;
        _column = column;
        _references = references;
        AttributionSize = references[0].Length;
        _groups = options.FeatureGroups ?? Enumerable.Range(0, AttributionSize).Select(i => new[] { i }).ToArray();
        ValidateGroups(_groups, AttributionSize);
        _definition = SchemaDefinition.Create(typeof(SyntheticRow));
        _definition[0].ColumnName = column;
        _definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, AttributionSize);
        if (slotNames is { } names)
            _definition[0].AddAnnotation(AnnotationUtils.Kinds.SlotNames, names, new VectorDataViewType(TextDataViewType.Instance, AttributionSize));
        var empty = DataViewConstructionUtils.CreateFromList(env, new List<SyntheticRow>(), _definition);
        Outputs = ModelOutputs.Of(model, empty.Schema);
        Outputs.ValidateTarget(options.TargetClass);
        var scores = Score(references);
        _expected = Enumerable.Range(0, Outputs.TargetCount).Select(k => Link(scores.Average(s => Outputs.Pick(s, k)))).ToArray();
    }

    public int AttributionSize { get; }

    public bool HasTokens => false;

    public ModelOutputs Outputs { get; }

    public IReadOnlyList<string> InputColumns => new[] { _column };

    public void Validate(DataViewSchema schema) => ExplainedColumn.ValidateVector(schema, _column, AttributionSize);

    public Func<RowExplanation> CreateRowExplainer(DataViewRow row)
    {
        var getter = row.GetGetter<VBuffer<float>>(row.Schema[_column]);
        VBuffer<float> buffer = default;
        return () =>
        {
            getter(ref buffer);
            var x = buffer.DenseValues().ToArray();
            return Explain(x, new Random(Seeds.Derive(_options.Seed, (int)row.Position)));
        };
    }

    /// <summary>Explains one row.</summary>
    public RowExplanation Explain(float[] x, Random random)
    {
        var full = Score(new[] { x })[0];
        int target = _options.TargetClass ?? Outputs.DefaultTarget(full);
        var (masks, weights) = Coalitions.Choose(_groups.Length, _options.SamplesFor(ExplanationMethod.KernelShap, _groups.Length), random);
        var rows = new List<float[]>(masks.Count * _references.Length);
        foreach (var mask in masks)
        {
            foreach (var reference in _references)
            {
                var synthetic = (float[])reference.Clone();
                for (int g = 0; g < _groups.Length; g++)
                {
                    if (!mask[g])
                        continue;
                    foreach (int slot in _groups[g])
                        synthetic[slot] = x[slot];
                }
                rows.Add(synthetic);
            }
        }
        var scores = Score(rows);
        var values = new double[masks.Count];
        for (int m = 0; m < masks.Count; m++)
        {
            double sum = 0;
            for (int r = 0; r < _references.Length; r++)
                sum += Outputs.Pick(scores[m * _references.Length + r], target);
            values[m] = Link(sum / _references.Length);
        }
        double output = Link(Outputs.Pick(full, target));
        var phi = KernelShapSolver.Solve(masks, weights, values, output, _expected[target]);
        var attributions = new float[AttributionSize];
        for (int g = 0; g < _groups.Length; g++)
        {
            foreach (int slot in _groups[g])
                attributions[slot] = (float)(phi[g] / _groups[g].Length);
        }
        return new RowExplanation { Attributions = attributions, Output = output, BaseValue = _expected[target], Target = target };
    }

    private double Link(double value) => _options.Link == ExplanationLink.Logit
        ? Math.Log(Math.Clamp(value, 1e-12, 1 - 1e-12) / (1 - Math.Clamp(value, 1e-12, 1 - 1e-12)))
        : value;

    /// <summary>The model's Score for each row (one value per class; one value for regression and binary models).</summary>
    private float[][] Score(IReadOnlyList<float[]> rows)
    {
        var data = DataViewConstructionUtils.CreateFromList(_env, rows.Select(r => new SyntheticRow { Values = r }).ToList(), _definition);
        var scored = _model.Transform(data);
        var column = scored.Schema[DefaultColumnNames.Score];
        var result = new float[rows.Count][];
        using var cursor = scored.GetRowCursor(new[] { column });
        int i = 0;
        if (Outputs.IsMulticlass)
        {
            var get = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> v = default;
            while (cursor.MoveNext())
            {
                get(ref v);
                result[i++] = v.DenseValues().ToArray();
            }
        }
        else
        {
            var get = cursor.GetGetter<float>(column);
            float v = 0;
            while (cursor.MoveNext())
            {
                get(ref v);
                result[i++] = new[] { v };
            }
        }
        return result;
    }

    private static void ValidateGroups(int[][] groups, int size)
    {
        var seen = new int[size];
        foreach (var group in groups)
        {
            if (group is null || group.Length == 0)
                throw new ArgumentException("FeatureGroups must not contain an empty group.", "FeatureGroups");
            foreach (int slot in group)
            {
                if (slot < 0 || slot >= size)
                    throw new ArgumentOutOfRangeException("FeatureGroups", slot, $"FeatureGroups name slot {slot}, outside the explained column's {size} slots.");
                seen[slot]++;
            }
        }
        int wrong = Array.FindIndex(seen, c => c != 1);
        if (wrong >= 0)
            throw new ArgumentException($"Every slot must be in exactly one of the FeatureGroups; slot {wrong} is in {seen[wrong]}.", "FeatureGroups");
    }

    public void Dispose()
    {
    }

    /// <summary>A synthetic row: only the explained column.</summary>
    private sealed class SyntheticRow
    {
        public float[] Values { get; set; } = Array.Empty<float>();
    }
}
