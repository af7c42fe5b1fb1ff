using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Vision;

namespace MLExtensions.Samples;

/// <summary>
/// Knowledge distillation on Fashion-MNIST (the subset in samples/data, or --data for the full set): trains a DefaultCnn teacher
/// on the 2,000 labeled images, then a LeNet-5 student twice with the same settings — on the labels alone, and distilled from the
/// teacher over the labeled images plus 8,000 unlabeled ones (samples/data/fashion-mnist/unlabeled-images-idx3-ubyte.gz), which
/// only the teacher's outputs can teach — and prints size, accuracy, latency and training time side by side, writes the distilled
/// student's training curves, saves it, reloads it and predicts. On the labeled images alone the distilled student only ties the
/// labels-only one (docs/distillation.md, "Image distillation"); unlabeled images are where a teacher pays.
/// Options: --data &lt;folder&gt;  --unlabeled &lt;IDX images file, or none&gt;  --epochs N (teacher; default 12)
/// --student-epochs N (default 100, with early stopping)  --temperature T (default 2)  --alpha x (default 1: soft targets only)
/// --seed N  --output &lt;folder&gt;.
/// </summary>
internal static class DistillationSample
{
    public static int Run(string[] args)
    {
        string data = VisionSample.Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        int epochs = int.Parse(VisionSample.Option(args, "--epochs") ?? "12");
        // The tour's measured recipe (docs/distillation.md): LeNet-5 learns slowly from soft targets, so it gets many short epochs.
        int studentEpochs = int.Parse(VisionSample.Option(args, "--student-epochs") ?? "100");
        double temperature = double.Parse(VisionSample.Option(args, "--temperature") ?? "2", System.Globalization.CultureInfo.InvariantCulture);
        double alpha = double.Parse(VisionSample.Option(args, "--alpha") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        int seed = int.Parse(VisionSample.Option(args, "--seed") ?? "1");
        string output = Path.GetFullPath(VisionSample.Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);

        var ml = new MLContext(seed: seed);
        var labeledItems = VisionSample.Load(data, "train").ToList();
        var rawTrain = ml.Data.LoadFromEnumerable(labeledItems);
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(rawTrain);
        var train = toKey.Transform(rawTrain);
        var testItems = VisionSample.Load(data, "t10k").ToList();
        var test = toKey.Transform(ml.Data.LoadFromEnumerable(testItems));
        // The transfer set: the labeled images and the unlabeled ones. An empty label is a value the key mapping never saw, so it
        // becomes key 0, ML.NET's missing value; the distiller keeps such rows and teaches them with the teacher's outputs alone.
        string? unlabeledPath = VisionSample.Option(args, "--unlabeled") is { } given
            ? (given == "none" ? null : given)
            : Path.Combine(data, "unlabeled-images-idx3-ubyte.gz") is var shipped && File.Exists(shipped) ? shipped : null;
        var unlabeledItems = unlabeledPath is null ? new List<VisionSample.Item>() : LoadUnlabeled(unlabeledPath);
        var transfer = toKey.Transform(ml.Data.LoadFromEnumerable(labeledItems.Concat(unlabeledItems)));
        Console.WriteLine($"Fashion-MNIST from {data}: {labeledItems.Count} labeled training, {unlabeledItems.Count} unlabeled " +
            $"({unlabeledPath ?? "none"}) and {testItems.Count} test images.\n");

        ImageClassifierOptions Options(ImageArchitecture architecture, int epochs, string title, out ConsoleProgress progress)
        {
            progress = new ConsoleProgress(epochs, title);
            var options = VisionSample.ImageOptions(architecture, epochs);
            options.Progress = progress;
            options.ProgressInterval = 5;
            return options;
        }

        var times = new Dictionary<string, TimeSpan>();
        T Timed<T>(string name, Func<T> train)
        {
            var clock = Stopwatch.StartNew();
            var model = train();
            times[name] = clock.Elapsed;
            return model;
        }

        var teacherOptions = Options(ImageArchitecture.DefaultCnn, epochs, "Teacher: DefaultCnn", out var teacherProgress);
        var teacher = Timed("DefaultCnn teacher", () => ml.MulticlassClassification.Trainers.ImageClassifier(teacherOptions).Fit(train));
        teacherProgress.Dispose();

        var plainOptions = Options(ImageArchitecture.LeNet5, studentEpochs, "Student: LeNet-5 on the labels", out var plainProgress);
        var plain = Timed("LeNet-5, labels only", () => ml.MulticlassClassification.Trainers.ImageClassifier(plainOptions).Fit(train));
        plainProgress.Dispose();

        // The same student learns from the teacher's softened outputs instead of the labels (α = 1: soft targets only), on the
        // labeled and the unlabeled images.
        var studentOptions = Options(ImageArchitecture.LeNet5, studentEpochs, "Student: LeNet-5 distilled from the teacher", out var studentProgress);
        var distiller = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions
        {
            Student = studentOptions,
            Temperature = temperature,
            Alpha = alpha,
        });
        var student = Timed("LeNet-5, distilled", () => distiller.Fit(transfer));
        studentProgress.Dispose();
        Console.WriteLine($"\n{distiller.LastReport}\n");

        Console.WriteLine($"{"Model",-24} {"Parameters",12} {"Test accuracy",14} {"Latency",10} {"Training",10}   (the distilled student also saw the {unlabeledItems.Count:N0} unlabeled images)");
        foreach (var (name, model) in new (string, NetworkTransformerBase)[] { ("DefaultCnn teacher", teacher), ("LeNet-5, labels only", plain), ("LeNet-5, distilled", student) })
        {
            double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
            long parameters = model.Network.parameters().Sum(p => p.numel());
            Console.WriteLine($"{name,-24} {parameters,12:N0} {accuracy,14:P2} {Latency(ml, model, data),7:F2} ms {times[name].TotalSeconds,8:F1} s");
        }

        string curves = Path.Combine(output, "distillation-student-curves.png");
        Charts.TrainingCurves(distiller.LastTrainingState!, curves);
        Console.WriteLine($"\nWrote {curves}");
        string path = Path.Combine(output, "distilled-student.zip");
        ml.Model.Save(student, train.Schema, path);
        var engine = ml.Model.CreatePredictionEngine<VisionSample.Item, Prediction>(new MLContext().Model.Load(path, out _));
        Console.WriteLine($"Saved and reloaded {path} ({new FileInfo(path).Length / 1024.0:F0} KiB). Predictions:");
        var classes = student.ClassNames!;
        foreach (var item in VisionSample.Load(data, "t10k").Take(5))
        {
            var p = engine.Predict(item);
            Console.WriteLine($"  {item.Label,-12} → {classes[(int)p.PredictedLabel - 1],-12} (p = {p.Score.Max():P1})");
        }
        return 0;
    }

    /// <summary>Images of an IDX file without labels, as sample items with an empty label.</summary>
    private static List<VisionSample.Item> LoadUnlabeled(string path)
    {
        var images = IdxFile.ReadImages(path);
        return Enumerable.Range(0, images.Count).Select(i => new VisionSample.Item { Pixels = images.Image(i).ToArray(), Label = "" }).ToList();
    }

    private static double Latency(MLContext ml, ITransformer model, string data)
    {
        var engine = ml.Model.CreatePredictionEngine<VisionSample.Item, Prediction>(model);
        var items = VisionSample.Load(data, "t10k").Take(220).ToList();
        foreach (var item in items.Take(20))
            engine.Predict(item);
        var times = items.Skip(20).Select(item =>
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(item);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }).OrderBy(t => t).ToList();
        return times[times.Count / 2];
    }

    private sealed class Prediction
    {
        public uint PredictedLabel { get; set; }

        public float[] Score { get; set; } = Array.Empty<float>();
    }
}
