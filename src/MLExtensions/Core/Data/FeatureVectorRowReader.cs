using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Core;

/// <summary>What to do with a row whose features contain NaN or ±∞.</summary>
public enum InvalidFeatureHandling
{
    /// <summary>Throw an exception naming the column and the row. The default: bad values usually mean a bug upstream.</summary>
    Throw,

    /// <summary>Skip the row during training and count it in the log.</summary>
    Skip,
}

/// <summary>Reads a fixed-size <c>Vector&lt;Single&gt;</c> feature column (dense or sparse) and, optionally, a label.</summary>
public sealed class FeatureVectorRowReader : IRowReaderFactory
{
    private readonly string _featureColumn;
    private readonly LabelBinding? _label;
    private readonly InvalidFeatureHandling _invalid;

    /// <summary>Binds and validates the columns.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type or size.</exception>
    public FeatureVectorRowReader(DataViewSchema schema, string featureColumn, LabelBinding? label, InvalidFeatureHandling invalid, int? expectedSize = null)
    {
        _featureColumn = featureColumn;
        _label = label;
        _invalid = invalid;
        Kind = label?.Kind ?? PredictionTask.Regression;
        FeatureSize = ValidateFeatureColumn(schema, featureColumn, expectedSize);
    }

    /// <inheritdoc />
    public int FeatureSize { get; }

    /// <inheritdoc />
    public PredictionTask Kind { get; }

    /// <summary>Checks that <paramref name="featureColumn"/> is a known-size float vector (of <paramref name="expectedSize"/> when given) and returns its size.</summary>
    public static int ValidateFeatureColumn(DataViewSchema schema, string featureColumn, int? expectedSize)
    {
        var column = schema.GetColumnOrNull(featureColumn)
            ?? throw SchemaErrors.Missing("feature", featureColumn, schema);
        if (column.Type is not VectorDataViewType vector || vector.ItemType != NumberDataViewType.Single || !vector.IsKnownSize)
        {
            string advice = column.Type is VectorDataViewType { ItemType: not NumberDataViewType } || column.Type == NumberDataViewType.Single
                ? ""
                : " Use mlContext.Transforms.Concatenate and Conversion.ConvertType to build a Single vector.";
            throw SchemaErrors.WrongType("feature", featureColumn, "a known-size vector of Single", column.Type, advice);
        }
        if (expectedSize is int size && vector.Size != size)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The feature column '{featureColumn}' must have {size} values, as in the training data; found a vector of {vector.Size}.");
        return vector.Size;
    }

    /// <inheritdoc />
    public IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema)
    {
        yield return schema[_featureColumn];
        if (_label is not null)
            yield return schema[_label.Column.Name];
    }

    /// <inheritdoc />
    public RowReader Create(DataViewRow row, bool withLabel)
    {
        var getFeatures = row.GetGetter<VBuffer<float>>(row.Schema[_featureColumn]);
        var getTarget = withLabel && _label is not null ? _label.CreateTargetGetter(row) : null;
        VBuffer<float> buffer = default;
        string column = _featureColumn;
        var invalid = _invalid;
        return (Span<float> features, out float target) =>
        {
            target = 0;
            if (getTarget is not null)
            {
                float? t = getTarget();
                if (t is null)
                    return RowStatus.MissingLabel;
                target = t.Value;
            }
            getFeatures(ref buffer);
            buffer.CopyTo(features);
            int bad = IndexOfNonFinite(features);
            if (bad >= 0)
            {
                if (invalid == InvalidFeatureHandling.Skip)
                    return RowStatus.Skipped;
                throw new InvalidOperationException(
                    $"The feature column '{column}' has a non-finite value ({features[bad]}) at slot {bad} in row {row.Position}. " +
                    "Clean or impute the data (e.g. mlContext.Transforms.ReplaceMissingValues), or set InvalidFeatureHandling = Skip.");
            }
            return RowStatus.Ok;
        };
    }

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                return i;
        }
        return -1;
    }
}
