using Microsoft.ML;
using MLExtensions.Distillation;
using MLExtensions.Tests.Vision;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

/// <summary>
/// Image students and unlabeled images: rows whose label is missing (key 0) stay in the transfer set and teach through the
/// teacher's outputs alone — what the distillation sample and the image study rely on.
/// </summary>
public class ImageTransferSetTests
{
    private readonly ITestOutputHelper _output;

    public ImageTransferSetTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void ImageStudentLearnsFromUnlabeledImagesThroughTheTeacher()
    {
        var ml = new MLContext(seed: 4);
        var labeled = SyntheticImages.Make(150, 1);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(labeled));
        var options = new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = SyntheticImages.Size, ImageWidth = SyntheticImages.Size,
            Normalization = ImageNormalization.None, Epochs = 4, BatchSize = 32, Seed = 3,
        };
        var teacher = ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(keys.Transform(ml.Data.LoadFromEnumerable(labeled)));
        // Other images whose label the key mapping never saw: key 0, ML.NET's missing value. No row of the student's data has a label.
        var unlabeled = SyntheticImages.Make(300, 2).Select(r => new SyntheticImages.Row { Pixels = r.Pixels, Label = "?" }).ToList();
        var transfer = keys.Transform(ml.Data.LoadFromEnumerable(unlabeled));
        var test = keys.Transform(ml.Data.LoadFromEnumerable(SyntheticImages.Make(60, 3)));

        var student = new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = SyntheticImages.Size, ImageWidth = SyntheticImages.Size,
            Normalization = ImageNormalization.None, Architecture = ImageArchitecture.LeNet5, Epochs = 12, BatchSize = 32, Seed = 5,
            ValidationFraction = 0,
        };
        var trainer = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions { Student = student, Alpha = 1, Temperature = 2 });
        var model = trainer.Fit(transfer);

        double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        _output.WriteLine($"student accuracy {accuracy:P1} from unlabeled images only; {trainer.LastReport}");
        Assert.Equal(300, trainer.LastReport!.RowsScored);
        Assert.True(accuracy >= 0.9, $"a student taught only through the teacher's outputs reached {accuracy:P1}");
    }
}
