using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Text;

namespace MLExtensions.WebApi;

/// <summary>
/// <c>train &lt;model.zip&gt; [--epochs N] [--train-limit N]</c>: fine-tunes all-MiniLM-L6-v2 (shipped in a NuGet package,
/// nothing downloaded) on the fine-food reviews copied next to the app and saves a model this service can serve.
/// The file is written to a temporary name and moved into place, so a running service never reloads half a file.
/// </summary>
internal static class TrainCommand
{
    private sealed class ReviewRow
    {
        [LoadColumn(0)]
        public string Review { get; set; } = "";

        [LoadColumn(1)]
        public string Rating { get; set; } = "";
    }

    private sealed class LabeledReview
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }
    }

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-'))
        {
            Console.Error.WriteLine("usage: train <model.zip> [--epochs N] [--train-limit N]");
            return 2;
        }
        string path = Path.GetFullPath(args[0]);
        int epochs = int.Parse(Option(args, "--epochs") ?? "1");
        int limit = int.Parse(Option(args, "--train-limit") ?? "1000");
        string folder = Path.Combine(AppContext.BaseDirectory, "data", "fine-foods");

        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Load(ml, Path.Combine(folder, "train.csv")).Take(limit).ToList());
        var test = ml.Data.LoadFromEnumerable(Load(ml, Path.Combine(folder, "test.csv")).ToList());
        var clock = Stopwatch.StartNew();
        var options = new TextClassifierOptions
        {
            TextColumnName = nameof(LabeledReview.Text),
            Epochs = epochs,
            MaxLength = 128,
            Progress = new Progress<MLExtensions.Core.TrainingProgress>(p => Console.WriteLine(p)),
        };
        var model = ml.BinaryClassification.Trainers.TextClassifier(options).Fit(train);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
        Console.WriteLine($"Trained in {clock.Elapsed.TotalMinutes:F1} min; test accuracy {metrics.Accuracy:P1} on {folder}/test.csv");

        Save(ml, model, train.Schema, path);
        Console.WriteLine($"Saved {path}. Serve it: dotnet run --project samples/MLExtensions.WebApi -- --Serving:ModelPath={path}");
        return 0;
    }

    /// <summary>Saves next to the target and renames over it: a watcher sees the whole file or the old one, never a part.</summary>
    internal static void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        string temp = path + ".saving";
        ml.Model.Save(model, schema, temp);
        File.Move(temp, path, overwrite: true);
    }

    private static IEnumerable<LabeledReview> Load(MLContext ml, string path) =>
        ml.Data.CreateEnumerable<ReviewRow>(ml.Data.LoadFromTextFile<ReviewRow>(path, separatorChar: ',', hasHeader: true, allowQuoting: true), false)
            .Select(r => new LabeledReview { Text = r.Review, Label = r.Rating == "great" });

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
