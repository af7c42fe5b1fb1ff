using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>Checks and reads the explained column.</summary>
internal static class ExplainedColumn
{
    /// <summary>Throws unless <paramref name="column"/> is a vector of Single of <paramref name="size"/> slots (any known size when 0).</summary>
    public static void ValidateVector(DataViewSchema schema, string column, int size)
    {
        var found = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}].");
        if (found.Type is not VectorDataViewType { ItemType: NumberDataViewType item } vector || item != NumberDataViewType.Single || vector.Size == 0 || (size > 0 && vector.Size != size))
            throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' must be a vector of {(size > 0 ? size.ToString() : "a known number of")} Single values; found {found.Type}.");
    }

    /// <summary>Throws unless <paramref name="column"/> is a text column (KernelSHAP over its words).</summary>
    public static void ValidateText(DataViewSchema schema, string column)
    {
        var found = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}].");
        if (found.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException("InputColumnName", column, $"The explained column '{column}' must be text (its words are explained); found {found.Type}.");
    }

    /// <summary>Whether <paramref name="column"/> of <paramref name="schema"/> is text.</summary>
    public static bool IsText(DataViewSchema schema, string column) => schema.GetColumnOrNull(column)?.Type is TextDataViewType;

    /// <summary>The SlotNames of <paramref name="column"/> when it has <paramref name="size"/> of them.</summary>
    public static VBuffer<ReadOnlyMemory<char>>? SlotNames(DataViewSchema schema, string column, int size)
    {
        var found = schema.GetColumnOrNull(column);
        if (found is null || !found.Value.HasSlotNames(size))
            return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        found.Value.GetSlotNames(ref names);
        return names;
    }

    /// <summary>Up to <paramref name="limit"/> rows of the explained column of a KernelSHAP model.</summary>
    public static float[][] ReadVectors(IDataView data, string column, int limit)
    {
        var rows = new List<float[]>();
        using var cursor = data.GetRowCursor(new[] { data.Schema[column] });
        var get = cursor.GetGetter<VBuffer<float>>(data.Schema[column]);
        VBuffer<float> v = default;
        while (rows.Count < limit && cursor.MoveNext())
        {
            get(ref v);
            rows.Add(v.DenseValues().ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Up to <paramref name="limit"/> rows as the network reads them (raw features or pixels), flattened.</summary>
    public static float[][] ReadNetworkInputs(NetworkTransformerBase network, IDataView data, int limit)
    {
        var rows = new List<float[]>();
        var columns = network.NetworkInputColumns.Select(n => data.Schema.GetColumnOrNull(n)).Where(c => c is not null).Select(c => c!.Value);
        using var cursor = data.GetRowCursor(columns);
        var input = network.CreateNetworkInput(cursor);
        while (rows.Count < limit && cursor.MoveNext())
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            rows.Add(input().reshape(-1).data<float>().ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Counts rows up to <paramref name="limit"/>.</summary>
    public static int CountRows(IDataView data, int limit)
    {
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        int count = 0;
        while (count < limit && cursor.MoveNext())
            count++;
        return count;
    }
}
