using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions;
using MLExtensions.Distillation;
using MLExtensions.Tests.Distillation;
using MLExtensions.Tests.Support;
using MLExtensions.Text;
using Xunit;

namespace MLExtensions.Tests.Text;

/// <summary>
/// <see cref="TextClassifierOptions.VocabularyPruning"/>: the pruned vocabulary is exactly the training rows' pieces and the
/// specials, the embedding table and parameter count shrink accordingly, pieces left out behave as unknown words, and the
/// mapping survives save and load.
/// </summary>
public class VocabularyPruningTests
{
    private static readonly string[] Specials = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };

    // Training texts use only these words (each one piece of the tiny vocabulary); every other piece should be pruned.
    private static readonly string[] TrainingWords = { "great", "lovely", "awful", "stale", "the", "coffee", "was", "tea" };

    private static List<TinyText.Row> Rows(int count, int seed)
    {
        var random = new Random(seed);
        string[] filler = { "the", "coffee", "was", "tea" };
        return Enumerable.Range(0, count).Select(i =>
        {
            bool positive = i % 2 == 0;
            string sentiment = positive ? (random.Next(2) == 0 ? "great" : "lovely") : (random.Next(2) == 0 ? "awful" : "stale");
            var words = Enumerable.Range(0, random.Next(2, 6)).Select(_ => filler[random.Next(filler.Length)]).ToList();
            words.Insert(random.Next(words.Count + 1), sentiment);
            return new TinyText.Row { Text = string.Join(' ', words), Label = positive };
        }).ToList();
    }

    private static TextClassifierOptions Options(bool prune, int keepFirst = 0)
    {
        var options = TinyText.ScratchClassifier(hidden: 16, maxPositions: 32, maxLength: 16, epochs: 2);
        options.ValidationFraction = 0;
        options.VocabularyPruning = new VocabularyPruningOptions { Enabled = prune, KeepFirstPieces = keepFirst };
        return options;
    }

    private static long Parameters(TextClassifierTransformer model) => model.Network.parameters().Sum(p => p.numel());

    [Fact]
    public void PrunedVocabularyIsTheTrainingPiecesAndSpecialsAndTheTableAndParameterCountShrinkAccordingly()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(80, 1));
        var pruned = (TextClassifierTransformer)ml.BinaryClassification.Trainers.TextClassifier(Options(prune: true)).Fit(data);
        var full = (TextClassifierTransformer)ml.BinaryClassification.Trainers.TextClassifier(Options(prune: false)).Fit(data);

        // Oracle: the tiny vocabulary's pieces that are training words or specials, in vocabulary order.
        var expected = TinyText.Vocabulary.Where(p => Specials.Contains(p) || TrainingWords.Contains(p)).ToList();
        Assert.Equal(expected, pruned.Tokenizer.Vocabulary);
        Assert.True(pruned.Tokenizer.IsPruned);
        Assert.Equal(TinyText.Vocabulary, pruned.Tokenizer.SourceVocabulary);
        Assert.Equal(expected.Count, pruned.Classifier.Encoder.Config.VocabSize);
        Assert.Equal(expected.Count, pruned.Classifier.Encoder.WordEmbeddingTable.shape[0]);
        Assert.Equal(TinyText.Vocabulary.Count, full.Classifier.Encoder.WordEmbeddingTable.shape[0]);
        // Only the word-embedding table differs: one row of 16 numbers per pruned piece.
        Assert.Equal((long)(TinyText.Vocabulary.Count - expected.Count) * 16, Parameters(full) - Parameters(pruned));
    }

    [Fact]
    public void KeepFirstPiecesAddsTheLeadingOrdinaryPieces()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(40, 2));
        var model = (TextClassifierTransformer)ml.BinaryClassification.Trainers.TextClassifier(Options(prune: true, keepFirst: 3)).Fit(data);

        // The first three ordinary pieces of the tiny vocabulary follow the five specials: great, excellent, tasty.
        var floor = TinyText.Vocabulary.Where(p => !Specials.Contains(p)).Take(3).ToArray();
        Assert.Equal(new[] { "great", "excellent", "tasty" }, floor);
        var expected = TinyText.Vocabulary.Where(p => Specials.Contains(p) || TrainingWords.Contains(p) || floor.Contains(p)).ToList();
        Assert.Equal(expected, model.Tokenizer.Vocabulary);
    }

    [Fact]
    public void PiecesLeftOutBecomeUnknownAndSaveLoadKeepsTheMappingAndThePredictions()
    {
        var ml = new MLContext(seed: 3);
        var data = ml.Data.LoadFromEnumerable(Rows(80, 3));
        var model = (TextClassifierTransformer)ml.BinaryClassification.Trainers.TextClassifier(Options(prune: true)).Fit(data);

        // "tasty" is in the full vocabulary but no training text has it; "zzqx" is in no vocabulary at all.
        var tokenizer = model.Tokenizer;
        int unknown = tokenizer.Vocabulary.ToList().IndexOf("[UNK]");
        Assert.Equal(unknown, tokenizer.UnknownId);
        var ids = tokenizer.Encode("the tasty coffee zzqx", null, 16).Ids;
        var vocabulary = tokenizer.Vocabulary;
        Assert.Equal(new[] { "[CLS]", "the", "[UNK]", "coffee", "[UNK]", "[SEP]" }, ids.Select(i => vocabulary[i]));

        var probes = new[]
        {
            new TinyText.Row { Text = "the tasty coffee", Label = true },
            new TinyText.Row { Text = "the zzqx coffee", Label = true },
            new TinyText.Row { Text = "great tea was lovely", Label = true },
            new TinyText.Row { Text = "stale coffee excellent", Label = false },
            new TinyText.Row { Text = "", Label = false },
        };
        var probeData = ml.Data.LoadFromEnumerable(probes);
        var before = PredictionDump.Lines(model.Transform(probeData)).ToArray();
        // A pruned piece is scored exactly like a word no vocabulary knows.
        Assert.Equal(before[0], before[1]);

        using var temp = new TempDirectory();
        string path = temp.File("pruned.zip");
        ml.Model.Save(model, data.Schema, path);
        var loaded = (TextClassifierTransformer)new MLContext().Model.Load(path, out _);
        Assert.Equal(model.Tokenizer.Vocabulary, loaded.Tokenizer.Vocabulary);
        Assert.Equal(model.Tokenizer.KeptSourceIds, loaded.Tokenizer.KeptSourceIds);
        Assert.Equal(TinyText.Vocabulary, loaded.Tokenizer.SourceVocabulary);
        Assert.Equal(before, PredictionDump.Lines(loaded.Transform(probeData)));
        Assert.Equal(PredictionDump.Lines(model.Transform(data)), PredictionDump.Lines(loaded.Transform(data)));
    }

    [Fact]
    public void OnnxExportAndOnnxRuntimeKeepTheMapping()
    {
        var ml = new MLContext(seed: 6);
        var data = ml.Data.LoadFromEnumerable(Rows(60, 6));
        var model = (TextClassifierTransformer)ml.BinaryClassification.Trainers.TextClassifier(Options(prune: true)).Fit(data);
        var probes = ml.Data.LoadFromEnumerable(new[]
        {
            new TinyText.Row { Text = "the tasty coffee", Label = true },
            new TinyText.Row { Text = "great tea was lovely", Label = true },
            new TinyText.Row { Text = "stale zzqx excellent box", Label = false },
        });
        float[] expected = model.Transform(probes).GetColumn<float>("Probability").ToArray();

        var onnx = ml.Model.ToOnnxRuntime(model);
        float[] actual = onnx.Transform(probes).GetColumn<float>("Probability").ToArray();
        Assert.Equal(expected.Length, actual.Length);
        Assert.All(expected.Zip(actual), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-4f, $"{p.First} vs {p.Second}"));

        using var temp = new TempDirectory();
        ml.Model.Save(onnx, data.Schema, temp.File("onnx.zip"));
        var reloaded = new MLContext().Model.Load(temp.File("onnx.zip"), out _);
        Assert.Equal(actual, reloaded.Transform(probes).GetColumn<float>("Probability").ToArray());

        ml.Model.ExportToOnnx(model, data.Schema, temp.File("text.onnx"));
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(temp.File("text.onnx"));
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(model.Tokenizer.Vocabulary, metadata["tokenizer.vocabulary"].Split('\n'));
        Assert.Equal(TinyText.Vocabulary, metadata["tokenizer.source_vocabulary"].Split('\n'));
    }

    [Fact]
    public void DistilledStudentKeepsThePiecesOfTheWholeTransferSetIncludingUnlabeledRows()
    {
        var ml = new MLContext(seed: 4);
        // Labeled rows use the training words; unlabeled rows add "excellent" and "bland", which only the teacher's outputs teach.
        var rows = Rows(60, 4).Select(r => new StudentKindsTests.TextRow { Text = r.Text, Label = r.Label ? 1 : 0 })
            .Concat(new[] { "excellent tea", "bland coffee", "the tea was excellent" }.Select(t => new StudentKindsTests.TextRow { Text = t, Label = float.NaN }))
            .ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var teacher = ml.Transforms.CustomMapping<StudentKindsTests.TextRow, StudentKindsTests.TextScore>((input, output) =>
            output.Score = new[] { "great", "lovely", "excellent" }.Any(w => input.Text.Contains(w)) ? 4 : -4, contractName: null).Fit(data);

        var student = (TextClassifierTransformer)ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = Options(prune: true) }).Fit(data);

        var expected = TinyText.Vocabulary.Where(p => Specials.Contains(p) || TrainingWords.Contains(p) || p is "excellent" or "bland").ToList();
        Assert.Equal(expected, student.Tokenizer.Vocabulary);
    }

    [Fact]
    public void PruningIsRefusedWhereItCannotWork()
    {
        var ml = new MLContext(seed: 5);
        var data = ml.Data.LoadFromEnumerable(Rows(20, 5));
        var miniLm = new TextClassifierOptions { Encoder = TextEncoderSource.MiniLM, VocabularyPruning = { Enabled = true } };
        var e1 = Assert.Throws<ArgumentException>(() => ml.BinaryClassification.Trainers.TextClassifier(miniLm).Fit(data));
        Assert.StartsWith("VocabularyPruning.Enabled needs Encoder = Scratch (a new encoder whose embedding table can be sized to the pruned vocabulary); found Encoder = MiniLM.", e1.Message);

        var negative = Options(prune: true, keepFirst: -1);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.TextClassifier(negative).Fit(data));
        Assert.StartsWith("VocabularyPruning.KeepFirstPieces must be ≥ 0; found -1.", e2.Message);

        // Hidden-state distillation runs the teacher on the student's ids, which a pruned student numbers differently.
        var textTeacher = ml.BinaryClassification.Trainers.TextClassifier(Options(prune: false)).Fit(data);
        var options = new DistillationOptions { Student = Options(prune: true), Text = { HiddenStateWeight = 1 } };
        var e3 = Assert.Throws<ArgumentException>(() => ml.BinaryClassification.Trainers.Distill(textTeacher, options).Fit(data));
        Assert.StartsWith("The student's VocabularyPruning is enabled, which the Text options HiddenStateWeight, AttentionWeight, token augmentation and InitializeFromTeacher do not support", e3.Message);
    }
}
