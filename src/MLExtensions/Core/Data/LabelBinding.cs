using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Core;

/// <summary>A validated label column: its type fits the prediction task, and it knows how to read targets.</summary>
public sealed class LabelBinding
{
    private LabelBinding(DataViewSchema.Column column, PredictionTask kind, int classCount)
    {
        Column = column;
        Kind = kind;
        ClassCount = classCount;
    }

    /// <summary>The label column.</summary>
    public DataViewSchema.Column Column { get; }

    /// <summary>The prediction task.</summary>
    public PredictionTask Kind { get; }

    /// <summary>Number of network outputs: K for multiclass, 1 otherwise.</summary>
    public int ClassCount { get; }

    /// <summary>Finds and checks the label column for <paramref name="kind"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing or has the wrong type; the message names both.</exception>
    public static LabelBinding Bind(DataViewSchema schema, string columnName, PredictionTask kind)
    {
        var column = schema.GetColumnOrNull(columnName)
            ?? throw SchemaErrors.Missing("label", columnName, schema);
        var type = column.Type;
        switch (kind)
        {
            case PredictionTask.Regression:
                if (type != NumberDataViewType.Single)
                    throw SchemaErrors.WrongType("label", columnName, "Single", type);
                return new LabelBinding(column, kind, 1);
            case PredictionTask.BinaryClassification:
                if (type != BooleanDataViewType.Instance && type != NumberDataViewType.Single)
                    throw SchemaErrors.WrongType("label", columnName, "Boolean (or Single with values 0 and 1)", type);
                return new LabelBinding(column, kind, 1);
            case PredictionTask.MulticlassClassification:
                if (type is not KeyDataViewType key)
                    throw SchemaErrors.WrongType("label", columnName, "a key type (Key<UInt32>)", type,
                        $" Convert the label with mlContext.Transforms.Conversion.MapValueToKey(\"{columnName}\") before the trainer.");
                if (key.Count == 0 || key.Count > int.MaxValue)
                    throw SchemaErrors.WrongType("label", columnName, "a key type with a known number of values", type);
                if (key.Count < 2)
                    throw new ArgumentOutOfRangeException(nameof(columnName),
                        $"The label column '{columnName}' has {key.Count} class; at least 2 classes are needed.");
                return new LabelBinding(column, kind, (int)key.Count);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown prediction kind.");
        }
    }

    /// <summary>A getter that yields the target of the cursor's current row, or null when the label is missing.</summary>
    public Func<float?> CreateTargetGetter(DataViewRow row)
    {
        string name = Column.Name;
        // Look the column up by name: the same binding serves views with other column layouts (e.g. a split).
        var column = row.Schema[name];
        switch (Kind)
        {
            case PredictionTask.MulticlassClassification:
            {
                var get = row.GetGetter<uint>(column);
                uint key = 0;
                int count = ClassCount;
                return () =>
                {
                    get(ref key);
                    if (key == 0)
                        return null; // key 0 is ML.NET's missing value
                    if (key > count)
                        throw new InvalidOperationException($"Label column '{name}': key value {key} is outside 1..{count}.");
                    return key - 1;
                };
            }
            case PredictionTask.BinaryClassification when column.Type == BooleanDataViewType.Instance:
            {
                var get = row.GetGetter<bool>(column);
                bool value = false;
                return () =>
                {
                    get(ref value);
                    return value ? 1f : 0f;
                };
            }
            case PredictionTask.BinaryClassification:
            {
                var get = row.GetGetter<float>(column);
                float value = 0;
                return () =>
                {
                    get(ref value);
                    if (float.IsNaN(value))
                        return null;
                    if (value != 0 && value != 1)
                        throw new InvalidOperationException($"Label column '{name}': binary labels of type Single must be 0 or 1; found {value}.");
                    return value;
                };
            }
            default:
            {
                var get = row.GetGetter<float>(column);
                float value = 0;
                return () =>
                {
                    get(ref value);
                    if (float.IsNaN(value))
                        return null;
                    if (float.IsInfinity(value))
                        throw new InvalidOperationException($"Label column '{name}': found {value}; regression labels must be finite.");
                    return value;
                };
            }
        }
    }
}

/// <summary>Exceptions for schema problems, worded the same way everywhere: which column, what was expected, what was found.</summary>
public static class SchemaErrors
{
    /// <summary>The column is absent from the schema.</summary>
    public static ArgumentOutOfRangeException Missing(string role, string columnName, DataViewSchema schema) =>
        new("inputSchema",
            $"The {role} column '{columnName}' was not found in the input data. Available columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"))}.");

    /// <summary>The column has the wrong type.</summary>
    public static ArgumentOutOfRangeException WrongType(string role, string columnName, string expected, DataViewType found, string advice = "") =>
        new("inputSchema", $"The {role} column '{columnName}' must be {expected}; found {found}.{advice}");
}
