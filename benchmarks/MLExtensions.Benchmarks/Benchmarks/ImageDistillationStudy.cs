using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Vision;

namespace MLExtensions.Benchmarks;

/// <summary>
/// The image half of the distill benchmark: does distillation make a small CNN better than the same CNN trained on the labels?
/// One ResNet-20 teacher (trained once and saved, so that repeated runs compare students only), then for every seed a LeNet-5
/// student trained on the labels alone, distilled with the teacher scoring each augmented batch, and distilled from the teacher's
/// scores of the un-augmented images. All students of one seed see the same images, augmentation, validation split and epochs,
/// so the only difference between them is the target.
/// </summary>
internal sealed class ImageDistillationStudy(BenchmarkArguments arguments, TextWriter output, IProgress<TrainingProgress> progress)
{
    /// <summary>The student variants, in the order they are trained for each seed.</summary>
    private static readonly string[] AllVariants = ["labels", "augmented-teacher", "clean-teacher", "unlabeled-transfer"];

    /// <summary>The options this study reads, listed by the distill benchmark.</summary>
    public static IEnumerable<BenchmarkOption> OptionList { get; } =
    [
        new("image-teacher-model", "path", "ResNet-20 teacher zip: loaded when it exists, else trained and saved there (default benchmark-output/resnet20-teacher.zip)"),
        new("image-teacher-epochs", "N", "ResNet-20 teacher epochs when it is trained (default 30)"),
        new("image-teacher-precision", "name", "teacher training precision: Float32, BFloat16 or Auto (default Auto)"),
        new("image-student-epochs", "N", "LeNet-5 student epochs (default 40; the best epoch on the validation split is kept)"),
        new("image-student-lr", "x", "LeNet-5 student peak learning rate, cosine schedule (default 3e-3)"),
        new("image-variants", "list", "image students, comma-separated: labels, augmented-teacher, clean-teacher, unlabeled-transfer (default the first three; " +
            "unlabeled-transfer needs --train-limit: the training images past it join the transfer set without their labels)"),
        new("image-temperature", "T", "image distillation temperature (default 4)"),
        new("image-alpha", "x", "image distillation weight of the soft targets (default 0.9)"),
        new("image-augmentation", "on|off", "random crops and flips for every student (default on; off leaves only labels and clean-teacher, the teacher scoring the images the student sees)"),
        new("seeds", "list", "image students: seeds, comma-separated (default 1,2,3)"),
    ];

    public void Run()
    {
        var data = FashionMnist.Load(arguments.String("image-data"), RepositoryPaths.Root());
        int? limit = arguments.OptionalInt("train-limit");
        var trainImages = limit is int n ? new LabeledImages(data.Train.Images.Take(n).ToArray(), data.Train.Labels.Take(n).ToArray()) : data.Train;
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(ImageRow.From(trainImages));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = ml.Data.Cache(keys.Transform(raw));
        var test = ml.Data.Cache(keys.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(data.Test))));
        // The first --train-limit images followed by the rest with a label the key mapping has never seen: key 0, ML.NET's missing
        // value. The distiller keeps such rows (the teacher's outputs are their only target); the teacher never saw them.
        var withUnlabeled = limit is int m && m < data.Train.Count
            ? ml.Data.Cache(keys.Transform(ml.Data.LoadFromEnumerable(ImageRow.From(trainImages).Concat(ImageRow.From(
                new LabeledImages(data.Train.Images.Skip(m).ToArray(), Enumerable.Repeat(byte.MaxValue, data.Train.Count - m).ToArray()))))))
            : null;
        output.WriteLine($"Images: {data.Folder}: {trainImages.Count} training, {data.Test.Count} test images" +
            (withUnlabeled is null ? "" : $", {data.Train.Count - trainImages.Count} more training images without labels for unlabeled-transfer"));

        var clock = Stopwatch.StartNew();
        var teacher = Teacher(ml, train, out bool trained);
        double teacherAccuracy = Accuracy(ml, teacher, test);
        double teacherLatency = ImageLatency(ml, teacher, data.Test);
        long teacherParameters = teacher.Network.parameters().Sum(p => p.numel());
        output.WriteLine($"  teacher: ResNet-20, test accuracy {teacherAccuracy:P2}, {teacherParameters:N0} parameters, median latency {teacherLatency:F3} ms" +
            (trained ? $", trained in {clock.Elapsed.TotalMinutes:F1} min" : ""));

        int[] seeds = (arguments.String("seeds") ?? "1,2,3").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        string[] variants = arguments.String("image-variants")?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? AllVariants;
        if (withUnlabeled is null && variants.Contains("unlabeled-transfer"))
            throw new ArgumentException("The unlabeled-transfer variant needs --train-limit below the training set's size: the images past it are the unlabeled ones.");
        foreach (string variant in variants.Where(v => !AllVariants.Contains(v)))
            throw new ArgumentException($"Unknown image variant '{variant}'; expected {string.Join(", ", AllVariants)}.");
        if (!StudentAugmentation && variants.Contains("augmented-teacher"))
            throw new ArgumentException("--image-augmentation off leaves no augmented images for the augmented-teacher variant; choose labels,clean-teacher.");

        var accuracies = variants.ToDictionary(v => v, _ => new List<double>());
        var minutes = variants.ToDictionary(v => v, _ => new List<double>());
        var latencies = new Dictionary<string, double>();
        long studentParameters = 0;
        foreach (int seed in seeds)
            foreach (string variant in variants)
            {
                clock.Restart();
                var student = TrainStudent(ml, variant == "unlabeled-transfer" ? withUnlabeled! : train, teacher, variant, seed);
                double elapsed = clock.Elapsed.TotalMinutes;
                double accuracy = Accuracy(ml, student, test);
                accuracies[variant].Add(accuracy);
                minutes[variant].Add(elapsed);
                studentParameters = student.Network.parameters().Sum(p => p.numel());
                if (!latencies.ContainsKey(variant))
                    latencies[variant] = ImageLatency(ml, student, data.Test);
                output.WriteLine($"  seed {seed}, {variant}: test accuracy {accuracy:P2}, {elapsed:F1} min");
            }

        output.WriteLine();
        output.WriteLine($"Results (images; T = {Temperature}, α = {Alpha}, {StudentEpochs} student epochs, student augmentation {(StudentAugmentation ? "crop + flip" : "none")}, " +
            $"seeds {string.Join(", ", seeds)})");
        var table = new TextTable(["Model", "Parameters", .. seeds.Select(s => $"Seed {s}"), "Mean", "Latency ms", "Speed-up", "Training min (mean)"]);
        table.AddRow(["Teacher: ResNet-20", $"{teacherParameters:N0}", .. seeds.Select(_ => $"{teacherAccuracy:P2}"), $"{teacherAccuracy:P2}", $"{teacherLatency:F3}", "1.0×", "-"]);
        foreach (string variant in variants)
            table.AddRow([$"Student: LeNet-5, {Describe(variant)}", $"{studentParameters:N0}", .. accuracies[variant].Select(a => $"{a:P2}"),
                $"{accuracies[variant].Average():P2}", $"{latencies[variant]:F3}", $"{teacherLatency / latencies[variant]:F1}×", $"{minutes[variant].Average():F1}"]);
        table.Write(output);
        if (accuracies.TryGetValue("labels", out var labels))
            foreach (string variant in variants.Where(v => v != "labels"))
            {
                double gain = 100 * (accuracies[variant].Average() - labels.Average());
                double speedup = teacherLatency / latencies[variant];
                output.WriteLine($"  {Describe(variant)}: {gain:+0.00;-0.00} points over labels only on the mean of {seeds.Length} seeds (target ≥ +1), " +
                    $"{speedup:F1}× the teacher's speed (target ≥ 5×): {(gain >= 1 && speedup >= 5 ? "MET" : "MISSED")}");
            }
        output.WriteLine();
    }

    private double Temperature => arguments.OptionalPositiveDouble("image-temperature") ?? 4;

    private double Alpha => arguments.OptionalNonNegativeDouble("image-alpha") ?? 0.9;

    private int StudentEpochs => arguments.Int("image-student-epochs", 40);

    private bool StudentAugmentation => (arguments.String("image-augmentation") ?? "on") == "on";

    private static string Describe(string variant) => variant switch
    {
        "labels" => "labels only",
        "augmented-teacher" => "distilled, teacher sees the augmented images",
        "unlabeled-transfer" => "distilled, plus the unlabeled images",
        _ => "distilled, teacher sees the un-augmented images",
    };

    /// <summary>
    /// The settings every model of the study shares: 28 × 28 grey images, random crops and flips, a cosine schedule to zero, the
    /// epoch with the lowest loss on a fixed 5 % validation split kept (early stopping off, so every run trains its full epochs).
    /// All of it is set here rather than taken from the trainer's defaults, so that runs stay comparable when those change.
    /// </summary>
    private ImageClassifierOptions Options(ImageArchitecture architecture, int epochs, int seed, double learningRate) => new()
    {
        ImageColumnName = nameof(ImageRow.Features),
        ImageChannels = 1,
        ImageHeight = 28,
        ImageWidth = 28,
        PixelScale = 1f,
        Architecture = architecture,
        Epochs = epochs,
        BatchSize = 128,
        ValidationFraction = 0.05,
        Seed = seed,
        Optimizer = { LearningRate = learningRate },
        Augmentation = { RandomCropPadding = 2, HorizontalFlip = true },
        LearningRateSchedule = { Kind = LearningRateScheduleKind.Cosine, MinimumFactor = 0 },
        EarlyStopping = { Patience = 1000, Monitor = EarlyStoppingMonitor.ValidationLoss },
        Progress = progress,
    };

    private ImageClassifierTransformer Teacher(MLContext ml, IDataView train, out bool trained)
    {
        string path = Path.GetFullPath(arguments.String("image-teacher-model") ?? Path.Combine(RepositoryPaths.Root(), "benchmark-output", "resnet20-teacher.zip"));
        trained = !File.Exists(path);
        if (!trained)
        {
            output.WriteLine($"  teacher: loaded from {path}");
            return (ImageClassifierTransformer)ml.Model.Load(path, out _);
        }
        var options = Options(ImageArchitecture.ResNet20, arguments.Int("image-teacher-epochs", 30), seed: 1, learningRate: 3e-3);
        options.Precision = arguments.Enum("image-teacher-precision", TrainingPrecision.Auto);
        var teacher = ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(train);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ml.Model.Save(teacher, train.Schema, path);
        output.WriteLine($"  teacher: trained and saved to {path}");
        return teacher;
    }

    private NetworkTransformerBase TrainStudent(MLContext ml, IDataView train, ImageClassifierTransformer teacher, string variant, int seed)
    {
        var options = Options(ImageArchitecture.LeNet5, StudentEpochs, seed, arguments.OptionalPositiveDouble("image-student-lr") ?? 3e-3);
        if (!StudentAugmentation)
            options.Augmentation = new ImageAugmentationOptions();
        if (variant == "labels")
            return ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(train);
        var distillation = new DistillationOptions
        {
            Student = options,
            Temperature = Temperature,
            Alpha = Alpha,
            TeacherSeesAugmentedImages = variant == "augmented-teacher",
        };
        return ml.MulticlassClassification.Trainers.Distill(teacher, distillation).Fit(train);
    }

    private static double Accuracy(MLContext ml, ITransformer model, IDataView test) =>
        ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;

    /// <summary>Median milliseconds of one PredictionEngine call over 500 test images.</summary>
    private static double ImageLatency(MLContext ml, ITransformer model, LabeledImages images) =>
        PredictionLatency.MedianMilliseconds<ImageRow, KeyPrediction>(ml, model, ImageRow.From(images).Take(520).ToList(), timedRows: 500);

    private sealed class KeyPrediction
    {
        public uint PredictedLabel { get; set; }
    }
}
