using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Tests.Onnx;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using TorchSharp;
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

    [Fact]
    public void TestTimeFlipAveragesTheLogitsOfEachImageAndItsMirror()
    {
        var ml = new MLContext(seed: 7);
        var (train, _) = Data(ml);
        var options = Options(epochs: 2);
        options.TestTimeFlip = true;
        var model = (ImageClassifierTransformer)ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(train);
        var rows = SyntheticImages.Make(12, 8);
        var mirrored = rows.Select(r => new SyntheticImages.Row { Pixels = Mirror(r.Pixels), Label = r.Label }).ToList();
        float[][] Scores(ITransformer m, List<SyntheticImages.Row> r) => m.Transform(ml.Data.LoadFromEnumerable(r)).GetColumn<float[]>("Score").ToArray();

        // Reference: softmax of the mean of the plain network's logits on both views, computed outside the classifier.
        float[][] expected, plainOriginal, plainMirrored;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            torch.Tensor Logits(List<SyntheticImages.Row> r) => model.Classifier.Network.call(model.Classifier.Preprocess.call(
                torch.tensor(r.SelectMany(x => x.Pixels).ToArray(), new long[] { r.Count, SyntheticImages.Size * SyntheticImages.Size })));
            var original = Logits(rows);
            var mirror = Logits(mirrored);
            expected = TensorRows.Of(torch.nn.functional.softmax((original + mirror) / 2, 1));
            plainOriginal = TensorRows.Of(original);
            plainMirrored = TensorRows.Of(mirror);
        }
        var scores = Scores(model, rows);
        Assert.True(OnnxTestData.MaxAbsDifference(scores, expected) <= 1e-5f, $"max |Δ| vs reference {OnnxTestData.MaxAbsDifference(scores, expected)}");
        // "left" and "right" images are each other's mirrors: the plain network tells them apart, the averaged one cannot.
        Assert.True(OnnxTestData.MaxAbsDifference(plainOriginal, plainMirrored) > 1e-2f, "the plain network scores an image and its mirror alike");
        Assert.True(OnnxTestData.MaxAbsDifference(scores, Scores(model, mirrored)) <= 1e-5f);

        using var temp = new TempDirectory();
        ml.Model.Save(model, train.Schema, temp.File("model.zip"));
        var loaded = new MLContext().Model.Load(temp.File("model.zip"), out _);
        Assert.True(((ImageClassifierTransformer)loaded).Classifier.AveragesMirroredView);
        Assert.Equal(scores, Scores(loaded, rows));
        var engine = ml.Model.CreatePredictionEngine<SyntheticImages.Row, ScorePrediction>(loaded);
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(scores[i], engine.Predict(rows[i]).Score);
    }

    private static float[] Mirror(float[] pixels)
    {
        int size = SyntheticImages.Size;
        return Enumerable.Range(0, pixels.Length).Select(i => pixels[i / size * size + size - 1 - i % size]).ToArray();
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

    public sealed class ScorePrediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    public sealed class ClassPrediction
    {
        public string PredictedClass { get; set; } = "";
    }
}
