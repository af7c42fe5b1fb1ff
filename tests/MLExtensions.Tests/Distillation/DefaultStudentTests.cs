using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Distillation;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using MLExtensions.Tests.Vision;
using MLExtensions.Text;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

/// <summary>DistillationOptions.Student left null: the student is chosen from the teacher and the data, and the choice is logged.</summary>
public class DefaultStudentTests
{
    private readonly ITestOutputHelper _output;

    public DefaultStudentTests(ITestOutputHelper output) => _output = output;

    public sealed class InputsRow
    {
        [VectorType(2)]
        public float[] Inputs { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    private static List<string> Capture(MLContext ml)
    {
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.RawMessage); };
        return messages;
    }

    private static (MLContext Ml, IDataView Train, IDataView Test, ITransformer Teacher) ImageSetup()
    {
        var ml = new MLContext(seed: 2);
        var raw = ml.Data.LoadFromEnumerable(SyntheticImages.Make(150, 1));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var train = keys.Transform(raw);
        var test = keys.Transform(ml.Data.LoadFromEnumerable(SyntheticImages.Make(60, 2)));
        var teacher = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = SyntheticImages.Size, ImageWidth = SyntheticImages.Size,
            Normalization = ImageNormalization.None, Epochs = 4, BatchSize = 32, Seed = 3,
        }).Fit(train);
        return (ml, train, test, teacher);
    }

    [Fact]
    public void BuiltInTeacherOnFeaturesGetsTheNeuralNetworkDefaults()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var teacher = ml.Transforms.NormalizeMinMax("Features")
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(data);
        var log = Capture(ml);

        var student = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions()).Fit(data);

        var network = Assert.IsType<NeuralNetworkTransformer>(student);
        Assert.Equal("Features", network.FeatureColumnName);
        Assert.Equal(new NeuralNetworkOptions().HiddenLayers.Length, network.Model.parameters().Count() / 2 - 1);
        double accuracy = ml.MulticlassClassification.Evaluate(student.Transform(data)).MicroAccuracy;
        _output.WriteLine($"student accuracy on the wine rows {accuracy:P1}");
        Assert.True(accuracy >= 0.9, $"accuracy {accuracy}");
        Assert.Contains("DistillationOptions.Student is null; default student: the teacher (MulticlassPredictionTransformer) is not a network of this library, " +
            "so the student reads 'Features', a feature vector of Single: NeuralNetworkOptions defaults (MLP 64 × 64).", log);
    }

    [Fact]
    public void ImageTeacherGetsALeNetWithItsImageSettings()
    {
        var (ml, train, test, teacher) = ImageSetup();
        var log = Capture(ml);

        var student = ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions()).Fit(train);

        var image = Assert.IsType<ImageClassifierTransformer>(student);
        Assert.Equal(ImageArchitecture.LeNet5, image.Architecture);
        Assert.Equal(((ImageClassifierTransformer)teacher).Image, image.Image);
        Assert.Equal(ImageNormalization.None, image.Options.Normalization);
        double accuracy = ml.MulticlassClassification.Evaluate(student.Transform(test)).MicroAccuracy;
        _output.WriteLine($"student accuracy {accuracy:P1}");
        Assert.True(accuracy >= 0.9, $"accuracy {accuracy}");
        Assert.Contains(log, m => m == "DistillationOptions.Student is null; default student: the teacher is an image classifier reading 'Pixels' (1 × 16 × 16): " +
            "LeNet-5 student with the teacher's image settings (normalisation None).");
    }

    [Fact]
    public void TextTeacherGetsTheBenchmarksBestStudent()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TinyText.Make(60, 1));
        var teacher = ml.BinaryClassification.Trainers.TextClassifier(new TextClassifierOptions
        {
            Encoder = TextEncoderSource.Scratch, ScratchVocabulary = TinyText.Vocabulary,
            ScratchConfig = BertConfig.Small(TinyText.Vocabulary.Count, layers: 1, hidden: 16, heads: 2, maxPositions: 64),
            MaxLength = 32, Epochs = 1, Seed = 1,
        }).Fit(train);

        var choice = DefaultStudent.Choose(teacher, train.Schema, new DistillationOptions(), trainingRows: 60);
        var options = Assert.IsType<TextClassifierOptions>(choice.Student);
        Assert.Equal(("Text", (string?)null), (options.TextColumnName, options.SecondTextColumnName));
        Assert.Equal(TextEncoderSource.Scratch, options.Encoder);
        Assert.Equal((2, 128, 4, 512, PositionEncoding.Learned, 0),
            (options.ScratchConfig!.Layers, options.ScratchConfig.HiddenSize, options.ScratchConfig.Heads, options.ScratchConfig.IntermediateSize,
             options.ScratchConfig.PositionEncoding, options.ScratchConfig.WordEmbeddingRank));
        Assert.Equal(TinyText.Vocabulary, options.ScratchVocabulary);
        Assert.Equal((8, 1e-3, 1e-4, 128, false), (options.Epochs, options.Optimizer.LearningRate, options.Optimizer.WeightDecay, options.MaxLength, options.EarlyStopping.Enabled));
        Assert.Equal((true, true, 480, false), (choice.Text.AddSentences, choice.Text.AddLeaveOneSentenceOut, choice.Text.RecombinedSentenceRows, choice.Text.InitializeFromTeacher));

        // Transfer settings the user chose are kept as they are.
        var given = new DistillationOptions { Text = { TokenMaskingProbability = 0.1 } };
        Assert.Same(given.Text, DefaultStudent.Choose(teacher, train.Schema, given, trainingRows: 60).Text);
        // The recipe's 30,000 recombined texts once the data is as large as the benchmark's.
        Assert.Equal(30_000, DefaultStudent.Choose(teacher, train.Schema, new DistillationOptions(), trainingRows: 100_000).Text.RecombinedSentenceRows);

        // The chosen options pass the trainer's checks (training them takes minutes: 8 epochs of a 2 × 128 encoder over the grown set).
        new DistillationOptions { Student = options, Text = choice.Text }.Validate();
    }

    [Fact]
    public void TeacherWhoseInputColumnIsMissingIsAClearError()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new InputsRow { Inputs = new[] { i % 2f, 1 - i % 2f }, Label = i % 2 }));
        data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var teacher = ml.Transforms.Concatenate("Features", "Inputs").Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy()).Fit(data);

        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Distill(teacher, new DistillationOptions()).Fit(data));
        Assert.Equal("DistillationOptions.Student is null and no default student fits: the teacher (MulticlassPredictionTransformer) is not a network of " +
            "this library, so the student reads 'Features', but the training data has no 'Features' column (its columns: 'Inputs', 'Label'). " +
            "Set DistillationOptions.Student to the student's options (NeuralNetworkOptions, ImageClassifierOptions or TextClassifierOptions) naming its input column. (Parameter 'options')",
            e.Message);

        // A network of this library behind a step that makes its input: the network's column is not in the data either.
        var network = ml.Transforms.Concatenate("Features", "Inputs")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { Epochs = 1, HiddenLayers = new[] { 4 } })).Fit(data);
        e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Distill(network, new DistillationOptions()).Fit(data));
        Assert.StartsWith("DistillationOptions.Student is null and no default student fits: the teacher's network (NeuralNetworkTransformer) reads 'Features', " +
            "but the training data has no 'Features' column (its columns: 'Inputs', 'Label').", e.Message);
    }

    [Fact]
    public void ImageTeacherWithAFeatureVectorStudentIsAClearError()
    {
        var (ml, train, _, teacher) = ImageSetup();
        var options = new DistillationOptions { Student = new NeuralNetworkOptions { FeatureColumnName = "Pixels", Epochs = 1 } };

        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Distill(teacher, options).Fit(train));
        Assert.Equal("The teacher is an image classifier reading the image column 'Pixels', but DistillationOptions.Student is NeuralNetworkOptions, which reads " +
            "the feature vector 'Pixels'. Set Student to ImageClassifierOptions (ImageColumnName = \"Pixels\"), or leave it null for the default LeNet-5 student " +
            "with the teacher's image settings. (Parameter 'options')", e.Message);
    }

    [Fact]
    public void TextStudentOnAFeatureVectorIsAClearError()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var teacher = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy().Fit(data);
        var options = new DistillationOptions { Student = new TextClassifierOptions { TextColumnName = "Features", Encoder = TextEncoderSource.Scratch } };

        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Distill(teacher, options).Fit(data));
        Assert.Equal("DistillationOptions.Student is TextClassifierOptions, which reads text, but its column 'Features' holds a vector of Single, not text. " +
            "Use NeuralNetworkOptions for a feature vector or ImageClassifierOptions for images, set TextColumnName to a text column, or leave Student null " +
            "to choose from the data. (Parameter 'options')", e.Message);
    }
}
