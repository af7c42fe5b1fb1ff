using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Distillation;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

public class DistillationTrainerTests
{
    private readonly ITestOutputHelper _output;

    public DistillationTrainerTests(ITestOutputHelper output) => _output = output;

    private static NeuralNetworkOptions Mlp(int epochs, int[] hidden, double validation = 0) => new()
    {
        HiddenLayers = hidden,
        Dropout = 0,
        Epochs = epochs,
        ValidationFraction = validation,
        Seed = 1,
        Optimizer = { LearningRate = 1e-2 },
    };

    private static double Agreement(MLContext ml, ITransformer student, IEnumerable<SyntheticTeachers.PointRow> rows)
    {
        var engine = ml.Model.CreatePredictionEngine<SyntheticTeachers.PointRow, MulticlassPrediction>(student);
        var list = rows.ToList();
        return list.Count(r => engine.Predict(r).PredictedLabel - 1 == SyntheticTeachers.Decide(r.Features)) / (double)list.Count;
    }

    [Fact]
    public void StudentLearnsTheTeachersDecisionsFromUnlabeledRowsAlone()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SyntheticTeachers.Points(600, 1));
        var teacher = SyntheticTeachers.PointTeacher(ml, data);
        var options = new DistillationOptions { Student = Mlp(60, new[] { 32 }), Alpha = 1, Temperature = 1 };

        var trainer = ml.MulticlassClassification.Trainers.Distill(teacher, options);
        var student = trainer.Fit(data);

        // Every label is missing: the student can only have learned from the teacher's soft targets.
        double agreement = Agreement(ml, student, SyntheticTeachers.Points(300, 2));
        _output.WriteLine($"agreement {agreement:P1}; {trainer.LastReport}");
        Assert.True(agreement >= 0.95, $"agreement with the teacher {agreement:P1}");
        Assert.IsType<NeuralNetworkTransformer>(student);
        Assert.Contains("log-probabilities", trainer.LastReport!.TeacherOutputs);
        Assert.Null(trainer.LastReport.TeacherParameters);
        Assert.Equal(600, trainer.LastReport.RowsScored);
    }

    [Fact]
    public void WithAlphaOneTheStudentFollowsTheTeacherRatherThanNoisyLabels()
    {
        var ml = new MLContext(seed: 2);
        // 40 % of the labels point to a wrong class; the teacher is always right.
        var data = ml.Data.LoadFromEnumerable(SyntheticTeachers.Points(600, 3, labelNoise: 0.4));
        var teacher = SyntheticTeachers.PointTeacher(ml, data);
        var test = SyntheticTeachers.Points(300, 4);

        var distilled = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions { Student = Mlp(40, new[] { 32 }), Alpha = 1 }).Fit(data);
        var fromLabels = ml.MulticlassClassification.Trainers.NeuralNetwork(Mlp(40, new[] { 32 })).Fit(data);

        double withTeacher = Agreement(ml, distilled, test), withLabels = Agreement(ml, fromLabels, test);
        _output.WriteLine($"distilled {withTeacher:P1}, labels only {withLabels:P1}");
        Assert.True(withTeacher >= 0.95, $"distilled student agrees with the teacher on {withTeacher:P1}");
    }

    [Fact]
    public void BuiltInSdcaTeacherOnWineAndSaveLoad()
    {
        var ml = new MLContext(seed: 3);
        var wine = TabularData.LoadWine(ml);
        var split = ml.Data.TrainTestSplit(wine, 0.3, seed: 1);
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(split.TrainSet);
        var train = toKey.Transform(split.TrainSet);
        var test = toKey.Transform(split.TestSet);
        var teacher = ml.Transforms.NormalizeMeanVariance("Features")
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy())
            .Fit(train);

        var options = new DistillationOptions { Student = Mlp(80, new[] { 8 }, validation: 0.2), Temperature = 2, Alpha = 0.7 };
        var trainer = ml.MulticlassClassification.Trainers.Distill(teacher, options);
        var student = trainer.Fit(train);

        var metrics = ml.MulticlassClassification.Evaluate(student.Transform(test));
        _output.WriteLine($"student accuracy {metrics.MicroAccuracy:P1}; {trainer.LastReport}");
        Assert.True(metrics.MicroAccuracy >= 0.9, $"accuracy {metrics.MicroAccuracy}");
        Assert.NotNull(trainer.LastReport!.TeacherValidationAccuracy);
        Assert.NotNull(trainer.LastReport.StudentValidationAccuracy);

        using var temp = new TempDirectory();
        ml.Model.Save(student, train.Schema, temp.File("student.zip"));
        var loaded = new MLContext().Model.Load(temp.File("student.zip"), out _);
        Assert.Equal(PredictionDump.Lines(student.Transform(test)), PredictionDump.Lines(loaded.Transform(test)));
    }

    [Fact]
    public void NetworkTeacherOfThisLibraryGivesItsLogitsAndParameterCounts()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var teacher = ml.MulticlassClassification.Trainers.NeuralNetwork(Mlp(60, new[] { 64, 64 })).Fit(data);
        var trainer = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions { Student = Mlp(60, new[] { 4 }, validation: 0.2) });

        var student = trainer.Fit(data);

        var report = trainer.LastReport!;
        _output.WriteLine(report.ToString());
        Assert.Contains("logits", report.TeacherOutputs);
        Assert.Equal(13 * 64 + 64 + 64 * 64 + 64 + 64 * 3 + 3, report.TeacherParameters);
        Assert.Equal(13 * 4 + 4 + 4 * 3 + 3, report.StudentParameters);
        Assert.True(ml.MulticlassClassification.Evaluate(student.Transform(data)).MicroAccuracy >= 0.9);
    }

    [Fact]
    public void BinaryDistillationFromABuiltInLogisticRegression()
    {
        var ml = new MLContext(seed: 5);
        var raw = TabularData.LoadBreastCancer(ml);
        var data = ml.Transforms.Conversion.ConvertType("Label", outputKind: DataKind.Boolean).Fit(raw).Transform(raw);
        var split = ml.Data.TrainTestSplit(data, 0.3, seed: 2);
        var teacher = ml.Transforms.NormalizeMeanVariance("Features").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(split.TrainSet);

        var trainer = ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = Mlp(40, new[] { 8 }, validation: 0.2) });
        var student = trainer.Fit(split.TrainSet);

        var metrics = ml.BinaryClassification.Evaluate(student.Transform(split.TestSet));
        _output.WriteLine($"accuracy {metrics.Accuracy:P1}; {trainer.LastReport}");
        Assert.True(metrics.Accuracy >= 0.93, $"accuracy {metrics.Accuracy}");
        Assert.Contains("log-odds of the teacher's 'Probability'", trainer.LastReport!.TeacherOutputs);
    }

    [Fact]
    public void CachedTeacherLogitsReproduceTheTeachersScores()
    {
        var ml = new MLContext(seed: 6);
        var wine = TabularData.LoadWine(ml);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine);
        var teacher = ml.MulticlassClassification.Trainers.NeuralNetwork(Mlp(20, new[] { 16 })).Fit(data);
        var label = MLExtensions.Core.LabelBinding.Bind(data.Schema, "Label", MLExtensions.Core.PredictionTask.MulticlassClassification);
        var binding = TeacherBinding.Bind(teacher, data.Schema, label, new DistillationOptions());
        using var channel = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Start("test");

        // Batched forward passes (64 rows) in the cache against the transformer's own row-by-row scores.
        var outputs = TeacherOutputs.Compute(binding, data, channel, default);

        var scores = ml.Data.CreateEnumerable<MulticlassPrediction>(teacher.Transform(data), false).ToList();
        Assert.Equal(scores.Count, outputs.Rows);
        for (int row = 0; row < scores.Count; row++)
        {
            var logits = outputs.Row(row).ToArray();
            double max = logits.Max(), sum = logits.Sum(v => Math.Exp(v - max));
            for (int k = 0; k < 3; k++)
                Assert.Equal(scores[row].Score[k], Math.Exp(logits[k] - max) / sum, 5);
        }
    }

    [Fact]
    public void CachedTextTeacherLogitsFromLengthSortedPaddedBatchesMatchItsRowByRowScores()
    {
        var ml = new MLContext(seed: 1);
        // 1,100 texts of 4 to 9 words: two sort windows (1,024 rows each), batches of mixed lengths that need padding.
        var data = ml.Data.LoadFromEnumerable(MLExtensions.Tests.Text.TinyText.Make(1100, 3));
        var teacher = ml.BinaryClassification.Trainers.TextClassifier(new MLExtensions.Text.TextClassifierOptions
        {
            Encoder = MLExtensions.Text.TextEncoderSource.Scratch,
            ScratchVocabulary = MLExtensions.Tests.Text.TinyText.Vocabulary,
            ScratchConfig = MLExtensions.Text.BertConfig.Small(MLExtensions.Tests.Text.TinyText.Vocabulary.Count, layers: 1, hidden: 16, heads: 2, maxPositions: 32),
            MaxLength = 32,
            Epochs = 1,
            Seed = 1,
            ValidationFraction = 0,
        }).Fit(data);
        var label = MLExtensions.Core.LabelBinding.Bind(data.Schema, "Label", MLExtensions.Core.PredictionTask.BinaryClassification);
        var binding = TeacherBinding.Bind(teacher, data.Schema, label, new DistillationOptions());
        using var channel = ((Microsoft.ML.Runtime.IHostEnvironment)ml).Start("test");

        var outputs = TeacherOutputs.Compute(binding, data, channel, default);

        // The transformer scores one row at a time, unpadded; its Score is the logit.
        var scores = ml.Data.CreateEnumerable<BinaryPrediction>(teacher.Transform(data), false).Select(p => p.Score).ToList();
        Assert.Equal(scores.Count, outputs.Rows);
        Assert.True(scores.Distinct().Count() > 100, "the texts should get many different scores");
        for (int row = 0; row < scores.Count; row++)
            Assert.True(Math.Abs(scores[row] - outputs.Row(row)[0]) < 1e-4, $"row {row}: cached {outputs.Row(row)[0]}, scored {scores[row]}");
    }
}
