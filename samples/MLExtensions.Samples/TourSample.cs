using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Transforms;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Onnx;
using MLExtensions.Vision;

namespace MLExtensions.Samples;

/// <summary>
/// The default sample: a short tour of what the library is for, on the Fashion-MNIST subset shipped in samples/data (2,000
/// training and 500 test images). A DefaultCnn image classifier trained in an ML.NET pipeline, distilled into a LeNet-5 student,
/// the student quantized to static int8 — each saved and reloaded — next to ML.NET's SdcaMaximumEntropy on the same pixels, in one
/// table (test accuracy, file size, single-row latency), with the training curves and confusion matrix as PNGs and the time of
/// every step. Options: --data &lt;folder&gt;  --epochs N (teacher; default 12)  --student-epochs N (default 100, with early stopping)  --seed N (default 1)
/// --temperature T (default 2)  --alpha x (default 1: soft targets only)  --student-augmentation on|off (random crops and flips for the student,
/// which the teacher then scores as seen; default off)  --output &lt;folder&gt;.
/// </summary>
internal static class TourSample
{
    private sealed class Prediction
    {
        public string PredictedClass { get; set; } = "";
    }

    private sealed record Row(string Name, double Accuracy, long Bytes, double LatencyMs);

    public static int Run(string[] args)
    {
        string data = VisionSample.Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        int epochs = int.Parse(VisionSample.Option(args, "--epochs") ?? "12");
        // A LeNet-5 epoch over 2,000 images takes about a fifth of a second and it learns slowly from soft targets: give it many
        // (early stopping ends it, usually at 35-85). Measured over seeds 1-3 (docs/distillation.md): 18 epochs at T = 4,
        // α = 0.7 left it at 77 %, below SdcaMaximumEntropy; 100 epochs on soft targets only (α = 1, T = 2) gave 85.0-85.8 %.
        int studentEpochs = int.Parse(VisionSample.Option(args, "--student-epochs") ?? "100");
        int seed = int.Parse(VisionSample.Option(args, "--seed") ?? "1");
        double temperature = double.Parse(VisionSample.Option(args, "--temperature") ?? "2", System.Globalization.CultureInfo.InvariantCulture);
        double alpha = double.Parse(VisionSample.Option(args, "--alpha") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        bool studentAugmentation = (VisionSample.Option(args, "--student-augmentation") ?? "off") == "on";
        string output = Path.GetFullPath(VisionSample.Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);
        var total = Stopwatch.StartNew();
        var steps = new List<(string Step, TimeSpan Time)>();
        T Step<T>(string name, Func<T> work)
        {
            var watch = Stopwatch.StartNew();
            var result = work();
            steps.Add((name, watch.Elapsed));
            Console.WriteLine($"  [{name}: {watch.Elapsed.TotalSeconds:F1} s]\n");
            return result;
        }

        var ml = new MLContext(seed: seed);
        var trainItems = VisionSample.Load(data, "train").ToList();
        var testItems = VisionSample.Load(data, "t10k").ToList();
        var train = ml.Data.LoadFromEnumerable(trainItems);
        var test = ml.Data.LoadFromEnumerable(testItems);
        Console.WriteLine($"A tour of MLExtensions on Fashion-MNIST from {data}: {trainItems.Count:N0} training and {testItems.Count:N0} test images, " +
            $"{Environment.ProcessorCount} cores.\nOther samples: tabular, vision, text, distillation (dotnet run --project samples/MLExtensions.Samples -- <name>).\n");

        // Every model reads the raw rows: the label becomes a key, the network predicts, the key goes back to the class name.
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue);
        var toClass = ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel");
        ImageClassifierOptions Images(ImageArchitecture architecture, int epochs, ConsoleProgress progress)
        {
            // The trainer's defaults: no augmentation (it pays off over longer training), a cosine schedule from a 3e-3 peak.
            var options = VisionSample.ImageOptions(architecture, epochs);
            options.Progress = progress;
            options.ProgressInterval = 5;
            return options;
        }

        // 1. The teacher: a CNN as one step of an ML.NET pipeline.
        var teacherProgress = new ConsoleProgress(epochs, "1. DefaultCnn in an ML.NET pipeline");
        var teacherTrainer = ml.MulticlassClassification.Trainers.ImageClassifier(Images(ImageArchitecture.DefaultCnn, epochs, teacherProgress));
        var teacher = Step("train the DefaultCnn", () => Train(toKey.Append(teacherTrainer).Append(toClass), train, teacherProgress, () => teacherTrainer.LastTrainingState));

        // 2. A student with an eighth of the teacher's parameters learns from its softened outputs.
        var teacherNetwork = ((IEnumerable<ITransformer>)teacher).OfType<ImageClassifierTransformer>().Single();
        var studentProgress = new ConsoleProgress(studentEpochs, "2. LeNet-5 distilled from the DefaultCnn");
        var studentOptions = Images(ImageArchitecture.LeNet5, studentEpochs, studentProgress);
        if (studentAugmentation)
            studentOptions.Augmentation = new ImageAugmentationOptions { RandomCropPadding = 2, HorizontalFlip = true };
        var distiller = ml.MulticlassClassification.Trainers.Distill(teacherNetwork, new DistillationOptions
        {
            Student = studentOptions,
            Temperature = temperature,
            Alpha = alpha,
            TeacherSeesAugmentedImages = studentAugmentation,
        });
        var student = Step("distill into LeNet-5", () => Train(toKey.Append(distiller).Append(toClass), train, studentProgress, () => distiller.LastTrainingState));
        Console.WriteLine($"{distiller.LastReport}\n");

        // 3. The student as static int8 ONNX, calibrated on training images (never the test set).
        Console.WriteLine("3. Quantizing the student to int8 (static, 256 calibration images)");
        var calibration = ml.Data.LoadFromEnumerable(trainItems.Take(256));
        var quantized = Step("quantize to int8", () =>
        {
            var model = ml.Model.Quantize(student, calibration, new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }, out var summary);
            Console.WriteLine($"  {summary}");
            return model;
        });

        // 4. ML.NET's own multiclass trainer on the same pixels, for comparison.
        Console.WriteLine("4. ML.NET baseline: SdcaMaximumEntropy on the 784 pixels scaled to [0, 1]");
        var baseline = Step("train SdcaMaximumEntropy", () => toKey
            .Append(ml.Transforms.Conversion.ConvertType("Features", nameof(VisionSample.Item.Pixels), Microsoft.ML.Data.DataKind.Single))
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy())
            .Append(toClass)
            .Fit(train));

        // 5. Each model saved, reloaded, and measured as reloaded.
        var rows = Step("save, reload, evaluate, time", () => new[]
        {
            Measure(ml, "DefaultCnn (teacher)", teacher, train.Schema, test, testItems, output, "tour-teacher.zip"),
            Measure(ml, "LeNet-5, distilled", student, train.Schema, test, testItems, output, "tour-student.zip"),
            Measure(ml, "LeNet-5, distilled, int8", quantized, train.Schema, test, testItems, output, "tour-student-int8.zip"),
            Measure(ml, "SdcaMaximumEntropy (ML.NET)", baseline, train.Schema, test, testItems, output, "tour-baseline.zip"),
        });

        Console.WriteLine($"{"Model (saved and reloaded)",-30} {"Test accuracy",14} {"File size",12} {"Latency (1 row)",16}");
        foreach (var r in rows)
            Console.WriteLine($"{r.Name,-30} {r.Accuracy,14:P1} {r.Bytes / 1024.0,8:N0} KiB {r.LatencyMs,13:F3} ms");
        Console.WriteLine("Latency: median PredictionEngine.Predict over 200 test images after a warm-up; it varies with what else runs on the machine.\n");

        var metrics = ml.MulticlassClassification.Evaluate(teacher.Transform(test));
        string teacherCurves = Path.Combine(output, "tour-teacher-curves.png");
        string studentCurves = Path.Combine(output, "tour-student-curves.png");
        string confusion = Path.Combine(output, "tour-teacher-confusion-matrix.png");
        Charts.TrainingCurves(teacherTrainer.LastTrainingState!, teacherCurves);
        Charts.TrainingCurves(distiller.LastTrainingState!, studentCurves);
        Charts.ConfusionMatrix(metrics.ConfusionMatrix.Counts, teacherNetwork.ClassNames ?? VisionSample.ClassNames, confusion);
        Console.WriteLine($"Wrote {teacherCurves}\nWrote {studentCurves}\nWrote {confusion}\n");

        foreach (var (step, time) in steps)
            Console.WriteLine($"{step,-32} {time.TotalSeconds,7:F1} s");
        Console.WriteLine($"{"total",-32} {total.Elapsed.TotalSeconds,7:F1} s");
        return 0;
    }

    /// <summary>Fits <paramref name="pipeline"/>, closes its progress bar and says where training stopped.</summary>
    private static ITransformer Train<T>(IEstimator<T> pipeline, IDataView train, ConsoleProgress progress, Func<MLExtensions.Core.TrainingState?> state)
        where T : class, ITransformer
    {
        var model = pipeline.Fit(train);
        progress.Dispose();
        if (state() is { } s)
            Console.WriteLine($"  stopped after {s.EpochsCompleted} epochs ({s.StopReason}); kept epoch {s.BestEpoch}");
        return model;
    }

    private static Row Measure(MLContext ml, string name, ITransformer model, Microsoft.ML.DataViewSchema schema, IDataView test,
        IReadOnlyList<VisionSample.Item> testItems, string output, string file)
    {
        string path = Path.Combine(output, file);
        ml.Model.Save(model, schema, path);
        var reloaded = new MLContext(seed: 1).Model.Load(path, out _);
        double accuracy = ml.MulticlassClassification.Evaluate(reloaded.Transform(test)).MicroAccuracy;
        using var engine = ml.Model.CreatePredictionEngine<VisionSample.Item, Prediction>(reloaded);
        // Warm up for a second (first calls allocate and tune), then time single rows.
        var warmUp = Stopwatch.StartNew();
        for (int i = 0; warmUp.Elapsed < TimeSpan.FromSeconds(1); i++)
            engine.Predict(testItems[i % testItems.Count]);
        var times = testItems.Take(200).Select(item =>
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(item);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }).OrderBy(t => t).ToList();
        return new Row(name, accuracy, new FileInfo(path).Length, times[times.Count / 2]);
    }
}
