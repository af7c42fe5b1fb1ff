// The consumer check's application: copied into a fresh `dotnet new console` project outside the repository by
// build/consumer-check.sh, which references MLExtensions only as a package. It is not part of the solution.
//
//   train <model.zip> <predictions.txt>   trains a NeuralNetwork on the embedded wine data, saves the model, writes predictions
//   load  <model.zip> <predictions.txt>   loads the model (meant for a second process) and writes the same predictions
using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions;
using MLExtensions.Tabular;

if (args.Length != 3 || (args[0] != "train" && args[0] != "load"))
{
    Console.Error.WriteLine("usage: ConsumerCheck train|load <model.zip> <predictions.txt>");
    return 2;
}

var ml = new MLContext(seed: 1);
string csv = Path.Combine(Path.GetTempPath(), $"consumer-check-wine-{Environment.ProcessId}.csv");
using (var resource = Assembly.GetExecutingAssembly().GetManifestResourceStream("wine.csv")!)
using (var file = File.Create(csv))
    resource.CopyTo(file);
var data = ml.Data.LoadFromTextFile<Wine>(csv, separatorChar: ',', hasHeader: true);

ITransformer model;
if (args[0] == "train")
{
    var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 1);
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 16 }, Epochs = 60 }));
    model = pipeline.Fit(split.TrainSet);
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
    Console.WriteLine($"trained: test micro-accuracy {metrics.MicroAccuracy:P1}");
    if (metrics.MicroAccuracy < 0.85)
    {
        Console.Error.WriteLine("accuracy below the 85 % floor");
        return 1;
    }
    ml.Model.Save(model, data.Schema, args[1]);
}
else
{
    model = ml.Model.Load(args[1], out _);
    Console.WriteLine("loaded the model in a new process");
}

// One line per row: the predicted class and the probabilities, round-trip formatted so the two processes compare exactly.
var engine = ml.Model.CreatePredictionEngine<Wine, Prediction>(model);
var lines = ml.Data.CreateEnumerable<Wine>(data, reuseRowObject: false)
    .Select(row => engine.Predict(row))
    .Select(p => p.PredictedLabel + " " + string.Join(" ", p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture))));
File.WriteAllLines(args[2], lines);
File.Delete(csv);
Console.WriteLine($"wrote predictions to {args[2]}");
return 0;

internal sealed class Wine
{
    [LoadColumn(0, 12), VectorType(13)]
    public float[] Features { get; set; } = Array.Empty<float>();

    [LoadColumn(13)]
    public float Label { get; set; }
}

internal sealed class Prediction
{
    public uint PredictedLabel { get; set; }

    public float[] Score { get; set; } = Array.Empty<float>();
}
