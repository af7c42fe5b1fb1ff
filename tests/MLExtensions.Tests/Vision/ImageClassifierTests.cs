using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using Xunit;

namespace MLExtensions.Tests.Vision;

public class ImageClassifierTests
{
    private static ImageClassifierOptions Options(int epochs = 8) => new()
    {
        ImageColumnName = "Pixels",
        ImageChannels = 1,
        ImageHeight = SyntheticImages.Size,
        ImageWidth = SyntheticImages.Size,
        Epochs = epochs,
        BatchSize = 32,
        Seed = 3,
    };

    private static (IDataView Train, IDataView Test) Data(MLContext ml)
    {
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label");
        var train = ml.Data.LoadFromEnumerable(SyntheticImages.Make(300, 1));
        var test = ml.Data.LoadFromEnumerable(SyntheticImages.Make(90, 2));
        var mapping = toKey.Fit(train);
        return (mapping.Transform(train), mapping.Transform(test));
    }

    [Fact]
    public void DefaultCnnLearnsASeparableImageTask()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = Data(ml);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(Options()).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        Assert.True(metrics.MicroAccuracy >= 0.95, $"accuracy {metrics.MicroAccuracy}");
        Assert.Equal(SyntheticImages.Classes, model.ClassNames);
    }

    [Fact]
    public void TrainsWithAugmentationOnBytePixels()
    {
        var ml = new MLContext(seed: 2);
        var rows = ml.Data.LoadFromEnumerable(SyntheticImages.MakeBytes(300, 1));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var options = Options(epochs: 10);
        options.Augmentation.RandomCropPadding = 1;
        options.Augmentation.MaxRotationDegrees = 5;
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
        Assert.True(metrics.MicroAccuracy >= 0.9, $"accuracy {metrics.MicroAccuracy}");
    }

    [Fact]
    public void MLImageColumnsWorkForTrainingAndPredictionEngine()
    {
        var ml = new MLContext(seed: 4);
        var rows = SyntheticImages.MakeBytes(240, 5).Select(r => new ImageRow { Image = ToImage(r.Pixels), Label = r.Label }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions { Epochs = 8, Seed = 4, BatchSize = 32 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var model = pipeline.Fit(data);

        var engine = ml.Model.CreatePredictionEngine<ImageRow, ClassPrediction>(model);
        int correct = rows.Take(60).Count(r => engine.Predict(r).PredictedClass == r.Label);
        Assert.True(correct >= 54, $"{correct}/60 correct");
    }

    [Fact]
    public void SaveAndLoadGivesIdenticalPredictions()
    {
        var ml = new MLContext(seed: 6);
        var (train, test) = Data(ml);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(Options(epochs: 2)).Fit(train);
        using var temp = new TempDirectory();
        ml.Model.Save(model, train.Schema, temp.File("model.zip"));
        var loaded = new MLContext().Model.Load(temp.File("model.zip"), out _);
        Assert.Equal(PredictionDump.Lines(model.Transform(test)), PredictionDump.Lines(loaded.Transform(test)));
    }

    internal static MLImage ToImage(byte[] gray)
    {
        var bgra = new byte[gray.Length * 4];
        for (int i = 0; i < gray.Length; i++)
        {
            bgra[4 * i] = bgra[4 * i + 1] = bgra[4 * i + 2] = gray[i];
            bgra[4 * i + 3] = 255;
        }
        return MLImage.CreateFromPixels(SyntheticImages.Size, SyntheticImages.Size, MLPixelFormat.Bgra32, bgra);
    }

    public sealed class ImageRow
    {
        [ImageType(SyntheticImages.Size, SyntheticImages.Size)]
        public MLImage Image { get; set; } = null!;

        public string Label { get; set; } = "";
    }

    public sealed class ClassPrediction
    {
        public string PredictedClass { get; set; } = "";
    }
}
