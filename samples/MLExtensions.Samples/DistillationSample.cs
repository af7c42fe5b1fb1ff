using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Vision;

namespace MLExtensions.Samples;

/// <summary>
/// Knowledge distillation on Fashion-MNIST (the subset in samples/data, or --data for the full set): trains a DefaultCnn teacher,
/// then a LeNet-5 student twice — on the labels alone and distilled from the teacher — and prints size, accuracy and latency side
/// by side, writes the distilled student's training curves, saves it, reloads it and predicts.
/// Options: --data &lt;folder&gt;  --epochs N  --output &lt;folder&gt;.
/// </summary>
internal static class DistillationSample
{
    public static int Run(string[] args)
    {
        string data = VisionSample.Option(args, "--data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");
        int epochs = int.Parse(VisionSample.Option(args, "--epochs") ?? "10");
        string output = Path.GetFullPath(VisionSample.Option(args, "--output") ?? "sample-output");
        Directory.CreateDirectory(output);

        var ml = new MLContext(seed: 1);
        var rawTrain = ml.Data.LoadFromEnumerable(VisionSample.Load(data, "train"));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(rawTrain);
        var train = toKey.Transform(rawTrain);
        var test = toKey.Transform(ml.Data.LoadFromEnumerable(VisionSample.Load(data, "t10k")));
        Console.WriteLine($"Fashion-MNIST from {data}: {train.GetRowCount()} training and {test.GetRowCount()} test images.\n");

        ImageClassifierOptions Options(ImageArchitecture architecture, string title, out ConsoleProgress progress)
        {
            progress = new ConsoleProgress(epochs, title);
            var options = VisionSample.ImageOptions(architecture, epochs);
            options.Progress = progress;
            options.ProgressInterval = 5;
            return options;
        }

        var teacherOptions = Options(ImageArchitecture.DefaultCnn, "Teacher: DefaultCnn", out var teacherProgress);
        var teacher = ml.MulticlassClassification.Trainers.ImageClassifier(teacherOptions).Fit(train);
        teacherProgress.Dispose();

        var plainOptions = Options(ImageArchitecture.LeNet5, "Student: LeNet-5 on the labels", out var plainProgress);
        var plain = ml.MulticlassClassification.Trainers.ImageClassifier(plainOptions).Fit(train);
        plainProgress.Dispose();

        // The student learns from the teacher's softened outputs (T = 4) on the augmented images it sees, and a little from the labels.
        var studentOptions = Options(ImageArchitecture.LeNet5, "Student: LeNet-5 distilled from the teacher", out var studentProgress);
        var distiller = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions
        {
            Student = studentOptions,
            Temperature = 4,
            Alpha = 0.9,
            TeacherSeesAugmentedImages = true,
        });
        var student = distiller.Fit(train);
        studentProgress.Dispose();
        Console.WriteLine($"\n{distiller.LastReport}\n");

        Console.WriteLine($"{"Model",-34} {"Parameters",12} {"Test accuracy",14} {"Latency",10}");
        foreach (var (name, model) in new (string, NetworkTransformerBase)[] { ("DefaultCnn teacher", teacher), ("LeNet-5, labels only", plain), ("LeNet-5, distilled", student) })
        {
            double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
            long parameters = model.Network.parameters().Sum(p => p.numel());
            Console.WriteLine($"{name,-34} {parameters,12:N0} {accuracy,14:P2} {Latency(ml, model, data),7:F2} ms");
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
