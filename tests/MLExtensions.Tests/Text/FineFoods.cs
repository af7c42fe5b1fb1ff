using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Tests.Text;

/// <summary>The Amazon fine-food review subsets in TestData/FineFoods (see the README there): Text and Label (true = "great").</summary>
public static class FineFoods
{
    private sealed class Raw
    {
        [LoadColumn(0)]
        public string Review { get; set; } = "";

        [LoadColumn(1)]
        public string Rating { get; set; } = "";
    }

    public sealed class Row
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }
    }

    public static List<Row> Rows(MLContext ml, string file)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "TestData", "FineFoods", file);
        var raw = ml.Data.LoadFromTextFile<Raw>(path, separatorChar: ',', hasHeader: true, allowQuoting: true);
        return ml.Data.CreateEnumerable<Raw>(raw, false).Select(r => new Row { Text = r.Review, Label = r.Rating == "great" }).ToList();
    }

    public static IDataView Load(MLContext ml, string file) => ml.Data.LoadFromEnumerable(Rows(ml, file));
}
