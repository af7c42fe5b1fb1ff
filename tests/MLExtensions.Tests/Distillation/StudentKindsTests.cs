using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Distillation;
using MLExtensions.Tests.Text;
using MLExtensions.Tests.Vision;
using MLExtensions.Text;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

/// <summary>Text and image students, taught by fixed teachers, including rows without labels.</summary>
public class StudentKindsTests
{
    private readonly ITestOutputHelper _output;

    public StudentKindsTests(ITestOutputHelper output) => _output = output;

    public sealed class TextRow
    {
        public string Text { get; set; } = "";

        /// <summary>1, 0, or NaN for an unlabeled row.</summary>
        public float Label { get; set; }
    }

    public sealed class TextScore
    {
        public float Score { get; set; }
    }

    [Fact]
    public void TinyTransformerStudentLearnsFromATextTeacherWithMostRowsUnlabeled()
    {
        var ml = new MLContext(seed: 1);
        // Three quarters of the rows have no label; the teacher knows the sentiment words.
        var rows = TinyText.Make(400, 1).Select((r, i) => new TextRow { Text = r.Text, Label = i % 8 < 2 ? (r.Label ? 1 : 0) : float.NaN }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var teacher = ml.Transforms.CustomMapping<TextRow, TextScore>((input, output) =>
            output.Score = TinyText.Positive.Any(w => input.Text.Contains(w)) ? 4 : -4, contractName: null).Fit(data);
        var student = new TextClassifierOptions
        {
            Encoder = TextEncoderSource.Scratch,
            ScratchVocabulary = TinyText.Vocabulary,
            ScratchConfig = BertConfig.Small(TinyText.Vocabulary.Count, layers: 1, hidden: 32, heads: 2, maxPositions: 64),
            MaxLength = 32,
            Epochs = 10,
            Seed = 1,
            ValidationFraction = 0.2,
            Optimizer = { LearningRate = 3e-3 },
            LearningRateSchedule = { Kind = MLExtensions.Core.LearningRateScheduleKind.Constant },
            EarlyStopping = { Patience = 20 }, // ~20 labeled validation rows: accuracy can sit still for epochs before the student takes off
        };

        var trainer = ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = student, Alpha = 0.8 });
        var model = trainer.Fit(data);

        var test = ml.Data.LoadFromEnumerable(TinyText.Make(100, 2).Select(r => new TextRow { Text = r.Text, Label = r.Label ? 1 : 0 }));
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test));
        _output.WriteLine($"accuracy {metrics.Accuracy:P1}; {trainer.LastReport}");
        Assert.IsType<TextClassifierTransformer>(model);
        Assert.True(metrics.Accuracy >= 0.95, $"accuracy {metrics.Accuracy}");
        Assert.Equal("the teacher's 'Score' as the logit", trainer.LastReport!.TeacherOutputs);
    }

    [Fact]
    public void CnnStudentLearnsFromAnImageClassifierTeacher()
    {
        var ml = new MLContext(seed: 2);
        var raw = ml.Data.LoadFromEnumerable(SyntheticImages.Make(300, 1));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = keys.Transform(raw);
        var test = keys.Transform(ml.Data.LoadFromEnumerable(SyntheticImages.Make(90, 2)));
        ImageClassifierOptions Options(ImageArchitecture architecture, int epochs) => new()
        {
            ImageColumnName = "Pixels",
            ImageChannels = 1,
            ImageHeight = SyntheticImages.Size,
            ImageWidth = SyntheticImages.Size,
            Architecture = architecture,
            Epochs = epochs,
            BatchSize = 32,
            Seed = 3,
        };
        var teacher = ml.MulticlassClassification.Trainers.ImageClassifier(Options(ImageArchitecture.DefaultCnn, 6)).Fit(train);
        var studentOptions = Options(ImageArchitecture.LeNet5, 8);
        studentOptions.Augmentation.RandomCropPadding = 1;

        var trainer = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions { Student = studentOptions, TeacherSeesAugmentedImages = true });
        var student = trainer.Fit(train);

        var metrics = ml.MulticlassClassification.Evaluate(student.Transform(test));
        _output.WriteLine($"accuracy {metrics.MicroAccuracy:P1}; {trainer.LastReport}");
        Assert.IsType<ImageClassifierTransformer>(student);
        Assert.True(metrics.MicroAccuracy >= 0.95, $"accuracy {metrics.MicroAccuracy}");
        Assert.True(trainer.LastReport!.StudentParameters < trainer.LastReport.TeacherParameters);
    }
}
