using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;

namespace MLExtensions.Samples;

/// <summary>
/// The main sample: classify wines (UCI Wine, 178 rows, 13 chemical measurements, 3 cultivars) with the
/// multiclass neural network. Trains with a progress bar, evaluates against SdcaMaximumEntropy, writes a
/// training-curve and a confusion-matrix PNG, saves the model, reloads it and predicts.
/// Options: --data &lt;csv with F0..F12,Label&gt;  --output &lt;folder&gt; (default ./sample-output).
/// </summary>
internal static class TabularSample
{
    internal sealed class Wine
    {
        [LoadColumn(0, 12), VectorType(13)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [LoadColumn(13)]
        public float Label { get; set; }
    }

    private sealed class Prediction
    {
        public float PredictedCultivar { get; set; }

        public float[] Score { get; set; } = Array.Empty<float>();
    }

    public static int Run(string[] args)
    {
        string? dataPath = Option(args, "--data");
        string output = Path.GetFullPath(Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: 1);

        // 1. Data: the embedded copy of wine.csv unless --data names another file.
        string csv = dataPath ?? ExtractEmbedded("wine.csv", output);
        var data = ml.Data.Cache(ml.Data.LoadFromTextFile<Wine>(csv, separatorChar: ',', hasHeader: true));
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 1);
        Console.WriteLine($"Data: {csv}\n");

        // 2. Train: MapValueToKey → NeuralNetwork → MapKeyToValue, like any ML.NET multiclass trainer.
        var options = new NeuralNetworkOptions { HiddenLayers = new[] { 32, 16 }, Epochs = 150 };
        using (var progress = new ConsoleProgress(options.Epochs, "Training the wine classifier"))
        {
            options.Progress = progress;
            options.ProgressInterval = 2;
            var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(trainer)
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedCultivar", "PredictedLabel"));
            var model = pipeline.Fit(split.TrainSet);
            progress.Dispose();
            var state = trainer.LastTrainingState!;
            Console.WriteLine($"\nStopped after {state.EpochsCompleted} epochs ({state.StopReason}); kept epoch {state.BestEpoch}.");

            // 3. Evaluate, next to ML.NET's own linear baseline on the same split.
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
            var baseline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMinMax("Features"))
                .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(split.TrainSet);
            var baselineMetrics = ml.MulticlassClassification.Evaluate(baseline.Transform(split.TestSet));
            Console.WriteLine($"Test accuracy: NeuralNetwork {metrics.MicroAccuracy:P1} (log-loss {metrics.LogLoss:F3}), SdcaMaximumEntropy {baselineMetrics.MicroAccuracy:P1}");
            Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

            string curves = Path.Combine(output, "tabular-training-curves.png");
            string confusion = Path.Combine(output, "tabular-confusion-matrix.png");
            Charts.TrainingCurves(state, curves);
            Charts.ConfusionMatrix(metrics.ConfusionMatrix.Counts, new[] { "cultivar 0", "cultivar 1", "cultivar 2" }, confusion);
            Console.WriteLine($"Wrote {curves}\nWrote {confusion}");

            // 4. Save, reload in a fresh context, predict.
            string modelPath = Path.Combine(output, "wine-model.zip");
            ml.Model.Save(model, split.TrainSet.Schema, modelPath);
            var reloaded = new MLContext().Model.Load(modelPath, out _);
            var engine = ml.Model.CreatePredictionEngine<Wine, Prediction>(reloaded);
            Console.WriteLine($"\nSaved and reloaded {modelPath} ({new FileInfo(modelPath).Length / 1024.0:F1} KiB). Predictions:");
            foreach (var wine in ml.Data.CreateEnumerable<Wine>(split.TestSet, reuseRowObject: false).Take(5))
            {
                var p = engine.Predict(wine);
                Console.WriteLine($"  true cultivar {wine.Label}, predicted {p.PredictedCultivar} (p = {p.Score.Max():P1})");
            }
        }
        return 0;
    }

    internal static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    internal static string ExtractEmbedded(string resource, string folder)
    {
        string path = Path.Combine(folder, resource);
        using var stream = typeof(TabularSample).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The sample's embedded resource '{resource}' is missing.");
        using var file = File.Create(path);
        stream.CopyTo(file);
        return path;
    }
}
