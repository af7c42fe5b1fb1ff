using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Benchmarks.Data;

/// <summary>The Amazon fine-food review split (train.csv, test.csv; label "great" or "other").</summary>
internal static class FineFoodReviews
{
    private sealed class Raw
    {
        [LoadColumn(0)]
        public string Review { get; set; } = "";

        [LoadColumn(1)]
        public string Rating { get; set; } = "";
    }

    /// <summary>A review and whether it is "great".</summary>
    public sealed class Row
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }
    }

    /// <summary>The folder: the one given, else ../shared/data/fine-foods, else the repository's sample subset.</summary>
    public static string Folder(string? requested, string repositoryRoot)
    {
        if (requested is not null)
            return Path.GetFullPath(requested);
        string shared = Path.GetFullPath(Path.Combine(repositoryRoot, "..", "shared", "data", "fine-foods"));
        return File.Exists(Path.Combine(shared, "train.csv")) ? shared : Path.Combine(repositoryRoot, "samples", "data", "fine-foods");
    }

    public static List<Row> Load(MLContext ml, string folder, string file)
    {
        string path = Path.Combine(folder, file);
        if (!File.Exists(path))
            throw new FileNotFoundException($"'{path}' does not exist; pass --data <folder with train.csv and test.csv>.", path);
        var raw = ml.Data.LoadFromTextFile<Raw>(path, separatorChar: ',', hasHeader: true, allowQuoting: true);
        return ml.Data.CreateEnumerable<Raw>(raw, false).Select(r => new Row { Text = r.Review, Label = r.Rating == "great" }).ToList();
    }
}
