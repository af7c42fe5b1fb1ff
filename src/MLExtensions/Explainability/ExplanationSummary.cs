using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Explainability;

/// <summary>Global importance from explained data.</summary>
public static class ExplanationSummary
{
    /// <summary>
    /// Mean |attribution| per feature over the rows of <paramref name="explained"/> (the output of an explanation transformer),
    /// keyed by slot name like ML.NET's <c>PermutationFeatureImportance</c> result ("Slot i" when the column has no slot
    /// names). For text, keyed by token: the mean over the token's occurrences.
    /// </summary>
    public static IReadOnlyDictionary<string, double> MeanAbsolute(IDataView explained)
    {
        ArgumentNullException.ThrowIfNull(explained);
        var column = explained.Schema.GetColumnOrNull(ExplanationTransformer.AttributionsColumn)
            ?? throw new ArgumentException($"The data has no '{ExplanationTransformer.AttributionsColumn}' column; pass the output of an explanation transformer.", nameof(explained));
        var tokensColumn = explained.Schema.GetColumnOrNull(ExplanationTransformer.TokensColumn);
        var sums = new Dictionary<string, (double Sum, long Count)>();
        string[]? names = null;
        int size = column.Type is VectorDataViewType v ? v.Size : 0;
        if (tokensColumn is null)
        {
            names = Enumerable.Range(0, size).Select(i => $"Slot {i}").ToArray();
            if (column.HasSlotNames(size))
            {
                VBuffer<ReadOnlyMemory<char>> slotNames = default;
                column.GetSlotNames(ref slotNames);
                int i = 0;
                foreach (var name in slotNames.DenseValues())
                {
                    if (!name.IsEmpty)
                        names[i] = name.ToString();
                    i++;
                }
            }
        }
        var columns = tokensColumn is null ? new[] { column } : new[] { column, tokensColumn.Value };
        using var cursor = explained.GetRowCursor(columns);
        var getValues = cursor.GetGetter<VBuffer<float>>(column);
        var getTokens = tokensColumn is null ? null : cursor.GetGetter<VBuffer<ReadOnlyMemory<char>>>(tokensColumn.Value);
        VBuffer<float> values = default;
        VBuffer<ReadOnlyMemory<char>> tokens = default;
        while (cursor.MoveNext())
        {
            getValues(ref values);
            getTokens?.Invoke(ref tokens);
            var dense = values.DenseValues().ToArray();
            var keys = names ?? tokens.DenseValues().Select(t => t.ToString()).ToArray();
            for (int i = 0; i < dense.Length; i++)
            {
                sums.TryGetValue(keys[i], out var s);
                sums[keys[i]] = (s.Sum + Math.Abs(dense[i]), s.Count + 1);
            }
        }
        return sums.ToDictionary(p => p.Key, p => p.Value.Sum / p.Value.Count);
    }
}
