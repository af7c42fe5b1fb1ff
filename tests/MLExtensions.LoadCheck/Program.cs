using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

// Usage: MLExtensions.LoadCheck <model.zip> <data.tsv> <features> <output.txt>
// data.tsv: one row per line, <features> tab-separated floats (R format). Output: one line per row with
// every Single / vector-of-Single / UInt32 / Boolean output column, floats as raw bit patterns.
if (args.Length != 4)
{
    Console.Error.WriteLine("usage: MLExtensions.LoadCheck <model.zip> <data.tsv> <features> <output.txt>");
    return 2;
}

var ml = new MLContext();
bool wasLoaded = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "MLExtensions");
var model = ml.Model.Load(args[0], out _);
int features = int.Parse(args[2], CultureInfo.InvariantCulture);
var loader = ml.Data.CreateTextLoader(new[] { new TextLoader.Column("Features", DataKind.Single, 0, features - 1) }, separatorChar: '\t');
var scored = model.Transform(loader.Load(args[1]));

using var output = new StreamWriter(args[3]);
output.WriteLine($"# MLExtensions loaded before Model.Load: {wasLoaded}");
foreach (var line in PredictionDump.Lines(scored))
    output.WriteLine(line);
return 0;

/// <summary>Formats prediction columns bit-exactly; shared with the tests by file link.</summary>
public static partial class PredictionDump
{
}
