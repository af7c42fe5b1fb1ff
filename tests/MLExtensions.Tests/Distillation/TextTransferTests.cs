using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Distillation;
using MLExtensions.Tests.Text;
using MLExtensions.Text;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

/// <summary>Intermediate-layer distillation, initialisation from the teacher and token augmentation, with tiny encoders.</summary>
public class TextTransferTests
{
    private readonly ITestOutputHelper _output;

    public TextTransferTests(ITestOutputHelper output) => _output = output;

    private static TextClassifierOptions Tiny(int layers, int hidden, int epochs, double learningRate) => new()
    {
        Encoder = TextEncoderSource.Scratch,
        ScratchVocabulary = TinyText.Vocabulary,
        ScratchConfig = BertConfig.Small(TinyText.Vocabulary.Count, layers: layers, hidden: hidden, heads: 2, maxPositions: 64),
        MaxLength = 32,
        Epochs = epochs,
        Seed = 1,
        ValidationFraction = 0.2,
        Optimizer = { LearningRate = learningRate },
        LearningRateSchedule = { Kind = MLExtensions.Core.LearningRateScheduleKind.Constant },
        EarlyStopping = { Patience = 20 }, // tiny students can sit at chance for a few epochs before they take off
    };

    private static (MLContext Ml, IDataView Train, IDataView Test, TextClassifierTransformer Teacher) Setup()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TinyText.Make(400, 1));
        var test = ml.Data.LoadFromEnumerable(TinyText.Make(100, 2));
        var teacher = ml.BinaryClassification.Trainers.TextClassifier(Tiny(layers: 2, hidden: 32, epochs: 10, learningRate: 3e-3)).Fit(train);
        return (ml, train, test, teacher);
    }

    [Fact]
    public void HiddenStatesAttentionAndTokenMaskingTeachANarrowerStudent()
    {
        var (ml, train, test, teacher) = Setup();
        var options = new DistillationOptions
        {
            Student = Tiny(layers: 1, hidden: 16, epochs: 10, learningRate: 3e-3),
            Text = { HiddenStateWeight = 1, AttentionWeight = 1, TokenMaskingProbability = 0.1, TokenReplacementProbability = 0.05, InitializeFromTeacher = true },
        };

        double teacherAccuracy = ml.BinaryClassification.Evaluate(teacher.Transform(test)).Accuracy;
        _output.WriteLine($"teacher accuracy {teacherAccuracy:P1}");
        var trainer = ml.BinaryClassification.Trainers.Distill(teacher, options);
        var student = (TextClassifierTransformer)trainer.Fit(train);

        var metrics = ml.BinaryClassification.Evaluate(student.Transform(test));
        _output.WriteLine($"accuracy {metrics.Accuracy:P1}; {trainer.LastReport}");
        Assert.True(metrics.Accuracy >= 0.95, $"accuracy {metrics.Accuracy}");
        Assert.Equal(16, student.Classifier.Encoder.Config.HiddenSize);
        // Recording hidden states was only for training: neither network keeps doing it.
        Assert.False(teacher.Classifier.Encoder.RecordHiddenStates);
        Assert.False(student.Classifier.Encoder.RecordHiddenStates);
        Assert.False(teacher.Classifier.Encoder.RecordAttentions);
        Assert.False(student.Classifier.Encoder.RecordAttentions);
    }

    [Fact]
    public void NeighbourReplacementAndSpanSamplingTeachAStudentFromLogitsAlone()
    {
        var (ml, train, test, teacher) = Setup();
        var options = new DistillationOptions
        {
            Student = Tiny(layers: 1, hidden: 16, epochs: 10, learningRate: 3e-3),
            Alpha = 0.9,
            Text = { TokenReplacementProbability = 0.2, ReplacementNeighbours = 3, SpanSamplingProbability = 0.25, InitializeFromTeacher = true },
        };

        var trainer = ml.BinaryClassification.Trainers.Distill(teacher, options);
        var student = (TextClassifierTransformer)trainer.Fit(train);

        var metrics = ml.BinaryClassification.Evaluate(student.Transform(test));
        _output.WriteLine($"accuracy {metrics.Accuracy:P1}; {trainer.LastReport}");
        Assert.True(metrics.Accuracy >= 0.95, $"accuracy {metrics.Accuracy}");
    }

    [Theory]
    [InlineData(-1, 0.0, "ReplacementNeighbours", "ReplacementNeighbours must be ≥ 0; found -1.")]
    [InlineData(0, 1.5, "SpanSamplingProbability", "SpanSamplingProbability must be in [0, 1]; found 1.5.")]
    [InlineData(0, -0.1, "SpanSamplingProbability", "SpanSamplingProbability must be in [0, 1]; found -0.1.")]
    public void AugmentationSettingsAreChecked(int neighbours, double span, string parameter, string message)
    {
        var ml = new MLContext(seed: 1);
        var options = new DistillationOptions { Student = Tiny(1, 16, 1, 1e-3), Text = { ReplacementNeighbours = neighbours, SpanSamplingProbability = span } };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.Distill(new TransformerChain<ITransformer>(), options));
        Assert.Equal(parameter, e.ParamName);
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void MoreNeighboursThanOrdinaryWordPiecesIsAnError()
    {
        var (ml, train, _, teacher) = Setup();
        // TinyText has 30 word pieces, five of them special ([PAD], [UNK], [CLS], [SEP], [MASK]).
        var options = new DistillationOptions { Student = Tiny(1, 16, 1, 1e-3), Text = { TokenReplacementProbability = 0.1, ReplacementNeighbours = 25 } };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.Distill(teacher, options).Fit(train));
        Assert.StartsWith("ReplacementNeighbours must be below the number of ordinary word pieces in the teacher's vocabulary (25); found 25.", e.Message);
    }

    [Fact]
    public void InitialisationCopiesTheMappedTeacherLayerWhenShapesMatch()
    {
        var (ml, train, _, teacher) = Setup();
        // A learning rate of ~0 leaves the student where initialisation put it.
        var options = new DistillationOptions
        {
            Student = Tiny(layers: 1, hidden: 32, epochs: 1, learningRate: 1e-12),
            Text = { InitializeFromTeacher = true, LayerMapping = new[] { 2 } },
        };

        var student = (TextClassifierTransformer)ml.BinaryClassification.Trainers.Distill(teacher, options).Fit(train);

        var teacherState = teacher.Classifier.state_dict();
        var studentState = student.Classifier.state_dict();
        foreach (string suffix in new[] { "attention.self.query.weight", "intermediate.dense.weight", "output.LayerNorm.bias" })
        {
            var s = studentState[$"encoder.encoder.layer.0.{suffix}"];
            var t = teacherState[$"encoder.encoder.layer.1.{suffix}"];
            Assert.True(s.allclose(t, rtol: 0, atol: 1e-6), suffix);
        }
        Assert.True(studentState["encoder.embeddings.word_embeddings.weight"].allclose(teacherState["encoder.embeddings.word_embeddings.weight"], rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void LowRankStudentStartsFromTheTeachersBestLowRankEmbeddingsAndSurvivesSaveLoad()
    {
        var (ml, train, test, teacher) = Setup();
        const int rank = 8;
        var studentOptions = Tiny(layers: 1, hidden: 32, epochs: 1, learningRate: 1e-12); // ~0: the student stays where initialisation put it
        studentOptions.ScratchConfig!.WordEmbeddingRank = rank;
        var options = new DistillationOptions { Student = studentOptions, Text = { InitializeFromTeacher = true } };

        var student = (TextClassifierTransformer)ml.BinaryClassification.Trainers.Distill(teacher, options).Fit(train);

        var studentState = student.Classifier.state_dict();
        var table = studentState["encoder.embeddings.word_embeddings.weight"];
        Assert.Equal(new long[] { TinyText.Vocabulary.Count, rank }, table.shape);
        using var scope = TorchSharp.torch.NewDisposeScope();
        var widened = table.matmul(studentState["encoder.embeddings.word_projection.weight"].t()) + studentState["encoder.embeddings.word_projection.bias"];
        // Reference: the rank-8 truncated SVD of the teacher's centred table (Eckart–Young), computed independently of the eigen-decomposition the initialisation uses.
        var teacherTable = teacher.Classifier.state_dict()["encoder.embeddings.word_embeddings.weight"].to(TorchSharp.torch.ScalarType.Float64);
        var mean = teacherTable.mean(new long[] { 0 }, keepdim: true);
        var (u, singular, vT) = TorchSharp.torch.linalg.svd(teacherTable - mean, fullMatrices: false);
        var best = u.narrow(1, 0, rank).matmul(TorchSharp.torch.diag(singular.narrow(0, 0, rank))).matmul(vT.narrow(0, 0, rank)) + mean;
        double error = (widened.to(TorchSharp.torch.ScalarType.Float64) - best).abs().max().item<double>();
        double spread = (teacherTable - best).abs().max().item<double>();
        _output.WriteLine($"max |student − best rank-{rank}| = {error:E2}; the approximation itself differs from the teacher by up to {spread:E2}");
        Assert.True(error <= 1e-5, $"error {error}");
        Assert.True(spread > 1e-3, "the teacher's table should not already be of rank 8, or the test shows nothing");

        // The low-rank student is an ordinary text classifier: it saves and loads with its rank.
        using var stream = new MemoryStream();
        ml.Model.Save(student, train.Schema, stream);
        stream.Position = 0;
        var loaded = (TextClassifierTransformer)new MLContext(seed: 5).Model.Load(stream, out _); // a fresh context, as in another process
        Assert.Equal(rank, loaded.Classifier.Encoder.Config.WordEmbeddingRank);
        Assert.Equal(student.Transform(test).GetColumn<float>("Score").ToArray(), loaded.Transform(test).GetColumn<float>("Score").ToArray());
    }

    [Theory]
    [InlineData(2, 6, new[] { 0, 3, 6 })]
    [InlineData(3, 6, new[] { 0, 2, 4, 6 })]
    [InlineData(4, 2, new[] { 0, 1, 1, 1, 2 })]
    public void UniformLayerMapping(int studentLayers, int teacherLayers, int[] expected) =>
        Assert.Equal(expected, TextEncoderTeacher.LayerMap(null, studentLayers, teacherLayers));

    [Fact]
    public void TextOptionsNeedATextClassifierTeacher()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(StudentKindsTests_Rows());
        var teacher = ml.Transforms.CustomMapping<StudentKindsTests.TextRow, StudentKindsTests.TextScore>((i, o) => o.Score = 1, contractName: null).Fit(data);
        var options = new DistillationOptions { Student = Tiny(1, 16, 1, 1e-3), Text = { HiddenStateWeight = 1 } };
        var e = Assert.Throws<ArgumentException>(() => ml.BinaryClassification.Trainers.Distill(teacher, options).Fit(data));
        Assert.StartsWith("The Text distillation options (hidden states, initialisation, token augmentation) need a teacher that is a text classifier of this library.", e.Message);
    }

    private static IEnumerable<StudentKindsTests.TextRow> StudentKindsTests_Rows() =>
        TinyText.Make(20, 1).Select(r => new StudentKindsTests.TextRow { Text = r.Text, Label = r.Label ? 1 : 0 });
}
