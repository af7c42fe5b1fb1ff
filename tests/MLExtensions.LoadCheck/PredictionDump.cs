using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

/// <summary>Writes the prediction columns (Score, Probability, PredictedLabel) of each row as exact text.</summary>
public static partial class PredictionDump
{
    public static readonly string[] Columns = { "Score", "Probability", "PredictedLabel", "Attributions", "BaseValue", "ConvergenceDelta", "ExplainedClass" };

    public static IEnumerable<string> Lines(IDataView scored)
    {
        var columns = Columns.Select(n => scored.Schema.GetColumnOrNull(n)).Where(c => c is not null).Select(c => c!.Value).ToArray();
        using var cursor = scored.GetRowCursor(columns);
        var formatters = columns.Select(c => Formatter(cursor, c)).ToArray();
        while (cursor.MoveNext())
            yield return string.Join(" | ", formatters.Select(f => f()));
    }

    private static Func<string> Formatter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var type = column.Type;
        if (type is VectorDataViewType)
        {
            var get = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> v = default;
            return () => { get(ref v); return string.Join(",", v.DenseValues().Select(Bits)); };
        }
        if (type == NumberDataViewType.Single)
        {
            var get = cursor.GetGetter<float>(column);
            float v = 0;
            return () => { get(ref v); return Bits(v); };
        }
        if (type == BooleanDataViewType.Instance)
        {
            var get = cursor.GetGetter<bool>(column);
            bool v = false;
            return () => { get(ref v); return v.ToString(); };
        }
        var getKey = cursor.GetGetter<uint>(column);
        uint k = 0;
        return () => { getKey(ref k); return k.ToString(CultureInfo.InvariantCulture); };
    }

    private static string Bits(float f) => BitConverter.SingleToInt32Bits(f).ToString("X8", CultureInfo.InvariantCulture);
}
