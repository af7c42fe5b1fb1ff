using System.Diagnostics;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Knowledge distillation, side by side in one run. Text (fine-food reviews): a fine-tuned MiniLM teacher, a 2-layer 128-wide
/// transformer student trained on the labels alone, the same student distilled from the teacher's logits, and distilled with
/// everything (initialised from the teacher, hidden-state loss, token augmentation); on request also with an augmented transfer set
/// (nearest-neighbour replacement, span sampling) or with the reviews' sentences as unlabeled rows (<see cref="TextStudents"/>). Targets: the distilled student keeps ≥ 97 %
/// of the teacher's test accuracy, beats the undistilled student, has ≤ 1/5 of the teacher's parameters and is ≥ 5× faster per
/// text in PredictionEngine. Images (Fashion-MNIST): a ResNet-20 teacher and a LeNet-5 student, with and without distillation.
/// </summary>
internal sealed class DistillationBenchmark : IBenchmark
{
    public string Name => "distill";

    public string Description => "Distillation: MiniLM teacher → small transformer students (reviews); ResNet-20 → LeNet-5 (Fashion-MNIST)";

    public IReadOnlyList<BenchmarkOption> Options { get; } =
    [
        new("part", "name", "text, image, all, or vocabulary (no training: pruned vocabulary size and parameter counts of the text students; default text)"),
        new("text-data", "folder", "fine-food folder with train.csv and test.csv (default ../shared/data/fine-foods)"),
        new("image-data", "folder", "Fashion-MNIST folder (default ../shared/data/fashion-mnist)"),
        new("teacher-model", "path", "text teacher zip: loaded when it exists, else fine-tuned and saved there (default benchmark-output/minilm-teacher.zip)"),
        new("teacher-epochs", "N", "text teacher fine-tuning epochs (default 3)"),
        new("student-epochs", "N", "text student epochs (default 8)"),
        new("student-width", "N", "text student width (default 128)"),
        new("student-layers", "N", "text student layers (default 2)"),
        new("student-embedding-rank", "N", "text student word-embedding rank, 0 = full width (default 0; e.g. 24 with --student-width 384 keeps a fifth of MiniLM's parameters)"),
        new("student-prune", null, "text students keep word embeddings only for the pieces of their training rows (TextClassifierOptions.VocabularyPruning)"),
        new("student-keep-first", "N", "with --student-prune: also keep the vocabulary's first N ordinary pieces (default 0)"),
        new("student-lr", "x", "text student learning rate (default 1e-3)"),
        new("student-keep-last", null, "text students keep their last epoch's weights instead of the best epoch's on validation"),
        new("student-freeze-embeddings", null, "text students keep their embeddings as initialised (with the augmented variant: the teacher's, projected)"),
        new("variants", "list", "text students to train, comma-separated: labels, logits, full, augmented, sentences, recombined (default labels, logits, full)"),
        new("recombined-rows", "N", "recombined variant: unlabeled texts joined from sentences of different reviews (default 30000)"),
        new("student-init", null, "sentences and recombined variants: initialise the student from the teacher (TextDistillationOptions.InitializeFromTeacher)"),
        new("temperature", "T", "text distillation temperature (default 2)"),
        new("alpha", "x", "weight of the soft targets for the logits and full variants (default 0.7)"),
        new("student-dropout", "p", "text student hidden and attention dropout (default 0.1)"),
        new("student-weight-decay", "x", "text student AdamW weight decay (default 1e-4)"),
        new("student-max-length", "N", "word pieces the text students read (default 128, as the teacher)"),
        new("augment-alpha", "x", "augmented variant: weight of the soft targets (default 0.9; augmented text may no longer fit its label)"),
        new("augment-mask", "p", "augmented variant: token masking probability (default 0.1)"),
        new("augment-replace", "p", "augmented variant: token replacement probability (default 0.3)"),
        new("augment-neighbours", "N", "augmented variant: replace by one of the N nearest word pieces, 0 = any (default 15)"),
        new("augment-span", "p", "augmented variant: span sampling probability (default 0.25)"),
        new("augment-hidden", "x", "augmented variant: hidden-state loss weight (default 0)"),
        new("train-limit", "N", "use only the first N training rows"),
        new("seed", "N", "seed (default 1)"),
        TorchSetup.ThreadsOption("1 lets two accuracy runs share the machine, but their latencies are then not comparable"),
        .. ImageDistillationStudy.OptionList,
    ];

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        TorchSetup.Apply(arguments);
        string part = arguments.String("part") ?? "text";
        output.WriteLine("Benchmark distill: knowledge distillation through ML.NET pipelines");
        output.WriteLine($"  Torch: {TorchSharp.torch.get_num_threads()} threads; {Environment.ProcessorCount} processors");
        output.WriteLine();
        if (part is "all" or "text")
            Text(arguments, output);
        if (part is "all" or "image")
            Images(arguments, output);
        if (part is "vocabulary")
            VocabularySizes(arguments, output);
        return 0;
    }

    /// <summary>
    /// What vocabulary pruning does to the text students' size, without training: the pieces of the training reviews (read as the
    /// students read them, to --student-max-length pieces, with the pruning code the trainer runs), and the parameter counts of
    /// 2-layer students at widths 128, 256 and --student-width, with MiniLM's full vocabulary and with the pruned one.
    /// </summary>
    private static void VocabularySizes(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        string folder = FineFoodReviews.Folder(arguments.String("text-data"), RepositoryPaths.Root());
        var rows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.OptionalInt("train-limit") ?? int.MaxValue).ToList();
        int maxLength = arguments.Int("student-max-length", 128);
        var pruning = new VocabularyPruningOptions { Enabled = true, KeepFirstPieces = arguments.Int("student-keep-first", 0, minimum: 0) };
        var full = new WordPieceTokenizer(MiniLmWeights.LoadVocabulary(), lowerCase: true);
        var pruned = VocabularyPruner.Prune(full, rows.Select(r => full.Encode(r.Text, null, maxLength)), pruning);
        output.WriteLine($"Vocabulary: {rows.Count:N0} training reviews of {folder} at {maxLength} pieces, first {pruning.KeepFirstPieces:N0} pieces kept: " +
            $"{pruned.Vocabulary.Count:N0} of {full.Vocabulary.Count:N0} word pieces (the trainer prunes on the rows it trains on, e.g. 90 % of these)");
        long teacher = Parameters(BertConfig.MiniLmL6);
        var table = new TextTable("Student", "Vocabulary", "Parameters", "% of MiniLM", "Saved by pruning");
        table.AddRow("Teacher: MiniLM (6 × 384)", $"{full.Vocabulary.Count:N0}", $"{teacher:N0}", "100 %", "-");
        foreach (int width in new[] { 128, 256, arguments.Int("student-width", 256) }.Distinct())
        {
            BertConfig Config(int vocabulary) => new()
            {
                VocabSize = vocabulary, Layers = arguments.Int("student-layers", 2), HiddenSize = width, Heads = Math.Max(1, width / 32),
                IntermediateSize = 4 * width, MaxPositions = 512, PositionEncoding = PositionEncoding.Learned,
            };
            long whole = Parameters(Config(full.Vocabulary.Count)), small = Parameters(Config(pruned.Vocabulary.Count));
            table.AddRow($"2 × {width}", $"{full.Vocabulary.Count:N0}", $"{whole:N0}", $"{(double)whole / teacher:P1}", "-");
            table.AddRow($"2 × {width}, pruned", $"{pruned.Vocabulary.Count:N0}", $"{small:N0}", $"{(double)small / teacher:P1}",
                $"{whole - small:N0} = {full.Vocabulary.Count - pruned.Vocabulary.Count:N0} rows × {width}");
        }
        table.Write(output);
    }

    /// <summary>Parameters of a binary text classifier on an encoder of <paramref name="config"/> (built, not trained).</summary>
    private static long Parameters(BertConfig config)
    {
        using var network = new TextClassifierNetwork(new BertEncoder(config), 1, TextPooling.Mean, 0.1, null);
        return network.parameters().Sum(p => p.numel());
    }

    private static void Text(BenchmarkArguments arguments, TextWriter output)
    {
        int seed = arguments.Int("seed", 1);
        var ml = new MLContext(seed: seed);
        string folder = FineFoodReviews.Folder(arguments.String("text-data"), RepositoryPaths.Root());
        var trainRows = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.OptionalInt("train-limit") ?? int.MaxValue).ToList();
        var testRows = FineFoodReviews.Load(ml, folder, "test.csv");
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        output.WriteLine($"Text: {folder}: {trainRows.Count} training, {testRows.Count} test reviews");

        string teacherPath = Path.GetFullPath(arguments.String("teacher-model") ?? Path.Combine(RepositoryPaths.Root(), "benchmark-output", "minilm-teacher.zip"));
        ITransformer teacher;
        if (File.Exists(teacherPath))
        {
            teacher = ml.Model.Load(teacherPath, out _);
            output.WriteLine($"  teacher: loaded from {teacherPath}");
        }
        else
        {
            var options = new TextClassifierOptions { Epochs = arguments.Int("teacher-epochs", 3), MaxLength = 128, BatchSize = 16, Seed = seed };
            options.Progress = EpochPrinter(output, "teacher");
            var clock = Stopwatch.StartNew();
            teacher = ml.BinaryClassification.Trainers.TextClassifier(options).Fit(train);
            Directory.CreateDirectory(Path.GetDirectoryName(teacherPath)!);
            ml.Model.Save(teacher, train.Schema, teacherPath);
            output.WriteLine($"  teacher: fine-tuned MiniLM in {clock.Elapsed.TotalMinutes:F1} min, saved to {teacherPath}");
        }
        var teacherNetwork = (TextClassifierTransformer)teacher;
        long teacherParameters = teacherNetwork.Network.parameters().Sum(p => p.numel());
        var (teacherAccuracy, teacherDecisions) = ScoreTest(ml, teacher, test);
        double teacherLatency = Latency(ml, teacher, testRows);
        output.WriteLine($"  teacher: test accuracy {teacherAccuracy:P2}, {teacherParameters:N0} parameters, median latency {teacherLatency:F2} ms");
        output.WriteLine();

        var students = new TextStudents(ml, arguments, teacher, EpochPrinter(output, "student"), output, seed);
        var table = new TextTable("Model", "Parameters", "Test accuracy", "% of teacher", "Agrees with teacher", "Latency ms", "Speed-up", "Training min");
        table.AddRow("Teacher: fine-tuned MiniLM (6 × 384)", $"{teacherParameters:N0}", $"{teacherAccuracy:P2}", "100 %", "-", $"{teacherLatency:F2}", "1.0×", "-");
        var variants = (arguments.String("variants") ?? "labels,logits,full").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        (double Accuracy, double Speedup, long Parameters)? labelsOnly = null, best = null;
        foreach (string variant in variants)
        {
            var clock = Stopwatch.StartNew();
            var (name, model) = students.Train(variant, trainRows, train);
            clock.Stop();
            var (accuracy, decisions) = ScoreTest(ml, model, test);
            double latency = Latency(ml, model, testRows);
            long parameters = ((NetworkTransformerBase)model).Network.parameters().Sum(p => p.numel());
            double agreement = Agreement(teacherDecisions, decisions);
            output.WriteLine($"  {name}: test accuracy {accuracy:P2}, agrees with the teacher on {agreement:P2} of test reviews, median latency {latency:F2} ms, {clock.Elapsed.TotalMinutes:F1} min");
            table.AddRow(name, $"{parameters:N0}", $"{accuracy:P2}", $"{accuracy / teacherAccuracy:P1}", $"{agreement:P2}", $"{latency:F2}", $"{teacherLatency / latency:F1}×", $"{clock.Elapsed.TotalMinutes:F1}");
            if (variant == "labels")
                labelsOnly = (accuracy, teacherLatency / latency, parameters);
            else if (best is null || accuracy > best.Value.Accuracy)
                best = (accuracy, teacherLatency / latency, parameters);
        }
        output.WriteLine();
        output.WriteLine("Results (text)");
        table.Write(output);
        if (best is { } b)
        {
            output.WriteLine();
            output.WriteLine($"  best distilled student keeps {b.Accuracy / teacherAccuracy:P1} of the teacher's accuracy (target ≥ 97 %): {Verdict(b.Accuracy >= 0.97 * teacherAccuracy)}");
            if (labelsOnly is { } l)
                output.WriteLine($"  beats the undistilled student ({b.Accuracy:P2} vs {l.Accuracy:P2}): {Verdict(b.Accuracy > l.Accuracy)}");
            output.WriteLine($"  parameters {(double)b.Parameters / teacherParameters:P1} of the teacher's (target ≤ 20 %): {Verdict(b.Parameters * 5 <= teacherParameters)}");
            output.WriteLine($"  speed-up per text {b.Speedup:F1}× (target ≥ 5×): {Verdict(b.Speedup >= 5)}");
        }
        output.WriteLine();
    }

    /// <summary>
    /// Runs a binary classifier over the test rows once: ML.NET's accuracy and the predicted label of every row, in row order.
    /// The scored columns are cached so that the evaluator and the decisions read the same pass instead of scoring twice.
    /// </summary>
    private static (double Accuracy, bool[] Decisions) ScoreTest(MLContext ml, ITransformer model, IDataView test)
    {
        var scored = ml.Data.Cache(model.Transform(test), "Label", "Score", "Probability", "PredictedLabel");
        double accuracy = ml.BinaryClassification.Evaluate(scored).Accuracy;
        bool[] decisions = ml.Data.CreateEnumerable<Decision>(scored, reuseRowObject: false).Select(d => d.PredictedLabel).ToArray();
        return (accuracy, decisions);
    }

    /// <summary>The fraction of rows on which two classifiers decide alike: the student's fidelity to its teacher.</summary>
    private static double Agreement(bool[] teacher, bool[] student) =>
        (double)teacher.Zip(student).Count(pair => pair.First == pair.Second) / teacher.Length;

    private sealed class Decision
    {
        public bool PredictedLabel { get; set; }
    }

    private static void Images(BenchmarkArguments arguments, TextWriter output) =>
        new ImageDistillationStudy(arguments, output, EpochPrinter(output, "image")).Run();

    private static string Verdict(bool met) => met ? "MET" : "MISSED";

    private static IProgress<TrainingProgress> EpochPrinter(TextWriter output, string who) => new SynchronousPrinter(p =>
    {
        if (p.Phase == TrainingPhase.EpochEnd)
            output.WriteLine($"    {who} epoch {p.Epoch}: loss {p.TrainingLoss:F4}, validation {p.ValidationMetric:P2}, {p.SamplesPerSecond:F0} rows/s");
        else if (p.Phase == TrainingPhase.Batch)
            output.WriteLine($"      {who} epoch {p.Epoch} batch {p.BatchInEpoch}/{p.BatchesPerEpoch}: loss {p.TrainingLoss:F4}, {p.SamplesPerSecond:F1} rows/s");
    });

    private static double Latency(MLContext ml, ITransformer model, List<FineFoodReviews.Row> rows) =>
        PredictionLatency.MedianMilliseconds<FineFoodReviews.Row, BinaryPrediction>(ml, model, rows, timedRows: 300);

    private sealed class BinaryPrediction
    {
        public bool PredictedLabel { get; set; }
    }

    /// <summary>Prints on the training thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousPrinter(Action<TrainingProgress> print) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => print(value);
    }
}
