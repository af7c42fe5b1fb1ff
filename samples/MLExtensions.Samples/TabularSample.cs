using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;

namespace MLExtensions.Samples;

/// <summary>
/// Neural networks on feature vectors, in two parts. 1: classify wines (UCI Wine, 178 rows, 13 chemical measurements,
/// 3 cultivars) with the multiclass neural network: progress bar, SdcaMaximumEntropy next to it, a training-curve and a
/// confusion-matrix PNG, save, reload, predict. On 178 easy rows every sound model scores about the same; part 2 shows where a
/// network earns its place: Friedman's nonlinear regression problem #1 (2,000 generated rows, 10 features of which 5 matter,
/// through sines, products and squares), where the network beats ML.NET's linear Sdca and LightGbm.
/// Options: --data &lt;csv with F0..F12,Label&gt;  --seed N (default 1)  --output &lt;folder&gt; (default ./sample-output).
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
        int seed = int.Parse(Option(args, "--seed") ?? "1");
        Directory.CreateDirectory(output);
        var ml = new MLContext(seed: seed);

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
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var model = pipeline.Fit(split.TrainSet);
            var trainingTime = clock.Elapsed;
            progress.Dispose();
            var state = trainer.LastTrainingState!;
            Console.WriteLine($"\nStopped after {state.EpochsCompleted} epochs ({state.StopReason}); kept epoch {state.BestEpoch}.");

            // 3. Evaluate, next to ML.NET's own linear baseline on the same split.
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
            var baseline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMinMax("Features"))
                .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(split.TrainSet);
            var baselineMetrics = ml.MulticlassClassification.Evaluate(baseline.Transform(split.TestSet));
            Console.WriteLine($"Test accuracy: NeuralNetwork {metrics.MicroAccuracy:P1} (log-loss {metrics.LogLoss:F3}, trained in {trainingTime.TotalSeconds:F1} s), " +
                $"SdcaMaximumEntropy {baselineMetrics.MicroAccuracy:P1}");
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
        Console.WriteLine();
        NonlinearRegression(ml, seed);
        return 0;
    }

    internal sealed class FriedmanRow
    {
        [VectorType(10)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    /// <summary>
    /// Friedman (1991) problem #1, as scikit-learn's make_friedman1 defines it: x uniform in [0, 1]^10,
    /// y = 10 sin(π x0 x1) + 20 (x2 − 0.5)² + 10 x3 + 5 x4 + N(0, 1); x5..x9 are noise features.
    /// </summary>
    internal static List<FriedmanRow> Friedman1(int rows, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows).Select(_ =>
        {
            var x = Enumerable.Range(0, 10).Select(_ => (float)random.NextDouble()).ToArray();
            double noise = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            double y = 10 * Math.Sin(Math.PI * x[0] * x[1]) + 20 * Math.Pow(x[2] - 0.5, 2) + 10 * x[3] + 5 * x[4] + noise;
            return new FriedmanRow { Features = x, Label = (float)y };
        }).ToList();
    }

    /// <summary>Part 2: the regression network against ML.NET's linear and boosted-tree regressors on Friedman #1.</summary>
    private static void NonlinearRegression(MLContext ml, int seed)
    {
        var train = ml.Data.LoadFromEnumerable(Friedman1(2000, seed));
        var test = ml.Data.LoadFromEnumerable(Friedman1(1000, seed + 1000));
        Console.WriteLine("Part 2: Friedman #1 regression (2,000 training and 1,000 test rows; the noise alone leaves an RMSE of 1.0)");
        // No dropout: it blurs a smooth regression target; early stopping on the 10 % validation split ends training.
        var options = new NeuralNetworkOptions { HiddenLayers = new[] { 64, 64 }, Dropout = 0, Epochs = 500, BatchSize = 64 };
        var trainers = new (string Name, IEstimator<ITransformer> Trainer)[]
        {
            ("NeuralNetwork (MLExtensions)", ml.Regression.Trainers.NeuralNetwork(options)),
            ("Sdca (ML.NET, linear)", ml.Transforms.NormalizeMinMax("Features").Append(ml.Regression.Trainers.Sdca())),
            ("LightGbm (ML.NET)", ml.Regression.Trainers.LightGbm()),
        };
        Console.WriteLine($"{"Model",-30} {"Test RMSE",10} {"R²",8} {"Training",10}");
        foreach (var (name, trainer) in trainers)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var model = trainer.Fit(train);
            var elapsed = clock.Elapsed;
            var metrics = ml.Regression.Evaluate(model.Transform(test));
            Console.WriteLine($"{name,-30} {metrics.RootMeanSquaredError,10:F3} {metrics.RSquared,8:F3} {elapsed.TotalSeconds,8:F1} s");
        }
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
