using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using Xunit;

namespace MLExtensions.Tests.Vision;

public class ImageClassifierBadInputTests
{
    private readonly MLContext _ml = new(seed: 1);

    private IDataView Keyed(IDataView data) => _ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);

    private static ImageClassifierOptions Options() => new() { ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = 16, ImageWidth = 16, Epochs = 1 };

    [Fact]
    public void PixelVectorOfTheWrongSize()
    {
        var data = Keyed(_ml.Data.LoadFromEnumerable(SyntheticImages.Make(9, 1)));
        var options = Options();
        options.ImageHeight = 28;
        options.ImageWidth = 28;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data));
        Assert.StartsWith("The image column 'Pixels' must have 784 values (1 × 28 × 28); found Vector<Single, 256>.", e.Message);
    }

    [Fact]
    public void PixelVectorWithoutDeclaredShape()
    {
        var data = Keyed(_ml.Data.LoadFromEnumerable(SyntheticImages.Make(9, 1)));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions { ImageColumnName = "Pixels", Epochs = 1 }).Fit(data));
        Assert.StartsWith("The image column 'Pixels' is a pixel vector (Vector<Single, 256>); set ImageChannels, ImageHeight and ImageWidth", e.Message);
    }

    [Fact]
    public void ChannelCountTheArchitectureCannotTake()
    {
        var options = Options();
        options.ImageChannels = 2;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.ImageClassifier(options));
        Assert.StartsWith("ImageChannels must be 1 or 3; found 2.", e.Message);
    }

    [Fact]
    public void FewerThanTwoClasses()
    {
        var rows = SyntheticImages.Make(9, 1).Where(r => r.Label == "left").ToList();
        var data = Keyed(_ml.Data.LoadFromEnumerable(rows));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.ImageClassifier(Options()).Fit(data));
        Assert.StartsWith("The label column 'Label' has 1 class; at least 2 classes are needed.", e.Message);
    }

    [Fact]
    public void MLImageOfADifferentSizeThanDeclared()
    {
        // LoadImages without ResizeImages gives a column type without a size, so each image is checked when read.
        using var temp = new TempDirectory();
        var files = SyntheticImages.MakeBytes(6, 1).Select((r, i) =>
        {
            string path = temp.File($"img{i}.png");
            ImageClassifierTests.ToImage(r.Pixels).Save(path);
            return new PathRow { ImagePath = path, Label = r.Label };
        }).ToList();
        var data = _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
            .Fit(_ml.Data.LoadFromEnumerable(files)).Transform(_ml.Data.LoadFromEnumerable(files));
        var options = new ImageClassifierOptions { ImageHeight = 20, ImageWidth = 20, Epochs = 1 };
        var e = Assert.Throws<ImageReadException>(() => _ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data));
        Assert.StartsWith("The image in column 'Image' at row 0 is 16×16 pixels; expected 20×20 as declared.", e.Message);
    }

    [Fact]
    public void UnreadableImageFileFailsNamingRowAndPathOrIsSkipped()
    {
        using var temp = new TempDirectory();
        var files = new List<PathRow>();
        var images = SyntheticImages.MakeBytes(12, 1);
        for (int i = 0; i < images.Count; i++)
        {
            string path = temp.File($"img{i}.png");
            ImageClassifierTests.ToImage(images[i].Pixels).Save(path);
            files.Add(new PathRow { ImagePath = path, Label = images[i].Label });
        }
        File.WriteAllText(files[4].ImagePath, "this is not a PNG");
        var data = _ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
            .Fit(_ml.Data.LoadFromEnumerable(files)).Transform(_ml.Data.LoadFromEnumerable(files));
        var options = new ImageClassifierOptions { ImageHeight = 16, ImageWidth = 16, ImagePathColumnName = "ImagePath", Epochs = 1, ValidationFraction = 0 };

        var e = Assert.Throws<ImageReadException>(() => _ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data));
        Assert.StartsWith($"The image in column 'Image' at row 4 (path '{files[4].ImagePath}') could not be read", e.Message);

        options.SkipUnreadableImages = true;
        var messages = new List<string>();
        _ml.Log += (_, m) => { lock (messages) messages.Add(m.RawMessage); };
        _ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data);
        Assert.Contains("Skipped 1 training rows whose image could not be read.", messages);
    }

    public sealed class PathRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }
}
