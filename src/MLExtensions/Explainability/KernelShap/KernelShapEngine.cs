using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>
/// Model-agnostic KernelSHAP: the model is scored through <c>Transform</c> on synthetic rows (<see cref="SyntheticRows"/>)
/// that copy every other column of the explained row and take, in the explained column, the row's values for the players
/// of a coalition and a reference's for the others; a coalition's value is the mean output over the references (then
/// linked). Players are the slots of a feature vector (or <see cref="ExplanationOptions.FeatureGroups"/> of them, e.g.
/// image patches), the patches of an MLImage column (a 4×4 grid by default, or FeatureGroups over its 3×H×W RGB values;
/// synthetic rows hold MLImages built from the blended pixels), or the words of a text column: an absent word is removed
/// from the text, so the reference is the empty text and the base value f(no words). A group's Shapley value is spread
/// evenly over its slots (pixels), so the Attributions sum to f(x) − BaseValue.
/// </summary>
internal sealed class KernelShapEngine : IAttributionEngine
{
    private readonly ITransformer _model;
    private readonly ExplanationOptions _options;
    private readonly string _column;
    private readonly float[][] _references;
    private readonly int[][]? _groups;
    private readonly (int Height, int Width)? _image;

    /// <summary>Patches per side of the default grid over an image (16 players).</summary>
    private const int DefaultGrid = 4;
    // The model's outputs per input schema (a cursor's schema is one object for all its rows).
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DataViewSchema, ModelOutputs> _outputs = new();

    /// <summary>An engine for <paramref name="column"/>: a vector or MLImage column when there are references, else a text column.</summary>
    /// <param name="model">The explained model.</param>
    /// <param name="options">The settings.</param>
    /// <param name="column">The explained column.</param>
    /// <param name="references">Reference rows of a vector column (for an image, 3×H×W RGB planes); empty for a text column (text has no background values).</param>
    /// <param name="image">The height and width of the explained images when the column is an MLImage column; null otherwise.</param>
    public KernelShapEngine(ITransformer model, ExplanationOptions options, string column, float[][] references, (int Height, int Width)? image = null)
    {
        _model = model;
        _options = options;
        _column = column;
        _references = references;
        _image = image;
        IsText = references.Length == 0;
        AttributionSize = IsText ? 0 : references[0].Length;
        if (!IsText)
        {
            _groups = options.FeatureGroups
                ?? (image is var (height, width)
                    ? ImagePatches.Groups(ImagePixels.Channels, height, width, Math.Min(DefaultGrid, height), Math.Min(DefaultGrid, width))
                    : Enumerable.Range(0, AttributionSize).Select(i => new[] { i }).ToArray());
            ValidateGroups(_groups, AttributionSize, image is null ? "the explained column's" : "the explained images'", image is null ? "slots" : "values (3×H×W)");
        }
    }

    /// <summary>Whether the players are the words of a text column.</summary>
    public bool IsText { get; }

    public int AttributionSize { get; }

    public bool HasTokens => IsText;

    public ModelOutputs OutputsFor(DataViewSchema schema) => _outputs.GetValue(schema, s => ModelOutputs.Of(_model, s));

    /// <summary>Every visible column: the model may read any of them, and the synthetic rows copy them.</summary>
    public IEnumerable<string> InputColumns(DataViewSchema schema) => schema.Where(c => !c.IsHidden).Select(c => c.Name);

    public void Validate(DataViewSchema schema)
    {
        if (IsText)
            ExplainedColumn.ValidateText(schema, _column);
        else if (_image is var (height, width))
            ExplainedColumn.ValidateImage(schema, _column, height, width);
        else
            ExplainedColumn.ValidateVector(schema, _column, AttributionSize);
        OutputsFor(schema).ValidateTarget(_options.TargetClass);
    }

    public Func<RowExplanation> CreateRowExplainer(DataViewRow row)
    {
        var snapshot = RowSnapshot.For(row, _column);
        var outputs = OutputsFor(row.Schema);
        if (IsText)
        {
            var getText = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[_column]);
            ReadOnlyMemory<char> text = default;
            return () =>
            {
                snapshot.Take();
                getText(ref text);
                var words = text.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (words.Length == 0)
                    throw new InvalidOperationException(
                        $"KernelShap explains the words of the text column '{_column}', but row {row.Position} has none (its text is '{text}'). Remove empty texts before explaining.");
                var groups = _options.FeatureGroups ?? Enumerable.Range(0, words.Length).Select(i => new[] { i }).ToArray();
                ValidateGroups(groups, words.Length, $"row {row.Position}'s", "words");
                // Absent words are removed: one synthetic text per coalition, no references.
                var explanation = Explain(outputs, groups, new Random(Seeds.Derive(_options.Seed, (int)row.Position)), 1,
                    masks => SyntheticRows.OfTexts(snapshot, _column, masks.Select(mask => string.Join(' ', words.Where((_, i) => Present(groups, mask, i)))).ToList()));
                explanation.Tokens = words;
                return explanation;
            };
        }
        if (_image is var (imageHeight, imageWidth))
        {
            var getImage = row.GetGetter<MLImage>(row.Schema[_column]);
            MLImage image = null!;
            return () =>
            {
                snapshot.Take();
                getImage(ref image);
                if (image is null)
                    throw new InvalidOperationException($"The image in column '{_column}' at row {row.Position} is missing or unreadable.");
                if (image.Height != imageHeight || image.Width != imageWidth)
                    throw new InvalidOperationException(
                        $"The image in column '{_column}' at row {row.Position} is {image.Width}×{image.Height}, but the background images were {imageWidth}×{imageHeight}; resize both to the same size (mlContext.Transforms.ResizeImages).");
                var x = ImagePixels.ToPlanes(image);
                var alpha = ImagePixels.Alpha(image);
                return Explain(outputs, _groups!, new Random(Seeds.Derive(_options.Seed, (int)row.Position)), _references.Length,
                    masks => SyntheticRows.OfImages(snapshot, _column, masks.SelectMany(mask => _references.Select(reference => Blend(x, reference, _groups!, mask))).ToList(),
                        alpha, imageHeight, imageWidth));
            };
        }
        var getter = row.GetGetter<VBuffer<float>>(row.Schema[_column]);
        VBuffer<float> buffer = default;
        return () =>
        {
            snapshot.Take();
            getter(ref buffer);
            var x = buffer.DenseValues().ToArray();
            return Explain(outputs, _groups!, new Random(Seeds.Derive(_options.Seed, (int)row.Position)), _references.Length,
                masks => SyntheticRows.OfVectors(snapshot, _column, masks.SelectMany(mask => _references.Select(reference => Blend(x, reference, _groups!, mask))).ToList()));
        };
    }

    /// <summary>Whether slot (or word) <paramref name="slot"/> is in a present group of <paramref name="mask"/>.</summary>
    private static bool Present(int[][] groups, bool[] mask, int slot)
    {
        for (int g = 0; g < groups.Length; g++)
        {
            if (mask[g] && Array.IndexOf(groups[g], slot) >= 0)
                return true;
        }
        return false;
    }

    /// <summary>The reference with the slots of the present groups taken from <paramref name="x"/>.</summary>
    private static float[] Blend(float[] x, float[] reference, int[][] groups, bool[] mask)
    {
        var synthetic = (float[])reference.Clone();
        for (int g = 0; g < groups.Length; g++)
        {
            if (!mask[g])
                continue;
            foreach (int slot in groups[g])
                synthetic[slot] = x[slot];
        }
        return synthetic;
    }

    /// <summary>
    /// Explains one row: scores the empty coalition, the full one and the chosen coalitions (each as
    /// <paramref name="perCoalition"/> synthetic rows, averaged), then solves KernelSHAP's regression.
    /// </summary>
    private RowExplanation Explain(ModelOutputs outputs, int[][] groups, Random random, int perCoalition, Func<IReadOnlyList<bool[]>, IDataView> synthesize)
    {
        var (masks, weights) = Coalitions.Choose(groups.Length, _options.SamplesFor(ExplanationMethod.KernelShap, groups.Length), random);
        var all = new List<bool[]>(masks.Count + 2) { new bool[groups.Length], Enumerable.Repeat(true, groups.Length).ToArray() };
        all.AddRange(masks);
        var scores = Score(outputs, synthesize(all), all.Count * perCoalition);
        // The full coalition's rows all equal the explained row.
        var full = scores[perCoalition];
        int target = _options.TargetClass ?? outputs.DefaultTarget(full);
        var values = new double[all.Count];
        for (int m = 0; m < all.Count; m++)
        {
            double sum = 0;
            for (int r = 0; r < perCoalition; r++)
                sum += outputs.Pick(scores[m * perCoalition + r], target);
            values[m] = Link(sum / perCoalition);
        }
        double baseValue = values[0], output = Link(outputs.Pick(full, target));
        var phi = KernelShapSolver.Solve(masks, weights, values.Skip(2).ToList(), output, baseValue);
        var attributions = new float[groups.Sum(g => g.Length)];
        for (int g = 0; g < groups.Length; g++)
        {
            foreach (int slot in groups[g])
                attributions[slot] = (float)(phi[g] / groups[g].Length);
        }
        return new RowExplanation { Attributions = attributions, Output = output, BaseValue = baseValue, Target = target };
    }

    private double Link(double value) => _options.Link == ExplanationLink.Logit
        ? Math.Log(Math.Clamp(value, 1e-12, 1 - 1e-12) / (1 - Math.Clamp(value, 1e-12, 1 - 1e-12)))
        : value;

    /// <summary>The model's Score for each synthetic row (one value per class; one value for regression and binary models).</summary>
    private float[][] Score(ModelOutputs outputs, IDataView rows, int count)
    {
        var scored = _model.Transform(rows);
        var column = scored.Schema[DefaultColumnNames.Score];
        var result = new float[count][];
        using var cursor = scored.GetRowCursor(new[] { column });
        int i = 0;
        if (outputs.IsMulticlass)
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

    private static void ValidateGroups(int[][] groups, int size, string owner, string unit)
    {
        var seen = new int[size];
        foreach (var group in groups)
        {
            if (group is null || group.Length == 0)
                throw new ArgumentException("FeatureGroups must not contain an empty group.", "FeatureGroups");
            foreach (int slot in group)
            {
                if (slot < 0 || slot >= size)
                    throw new ArgumentOutOfRangeException("FeatureGroups", slot, $"FeatureGroups name slot {slot}, outside {owner} {size} {unit}.");
                seen[slot]++;
            }
        }
        int wrong = Array.FindIndex(seen, c => c != 1);
        if (wrong >= 0)
            throw new ArgumentException($"Every slot must be in exactly one of the FeatureGroups; slot {wrong} of {owner} {size} {unit} is in {seen[wrong]}.", "FeatureGroups");
    }

    public void Dispose()
    {
    }

}
