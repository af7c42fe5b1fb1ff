using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Tabular;
using MLExtensions.Tests.Text;
using MLExtensions.Text;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Distillation;

/// <summary>Unlabeled rows made of the training texts' sentences: the plan, the data view that adds them, and the trainer.</summary>
public class SentenceTransferTests
{
    private readonly ITestOutputHelper _output;

    public SentenceTransferTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void SentencesSplitAtSentenceEndsAndLineBreaksAndDropFragments()
    {
        var sentences = SentenceTransferSet.Sentences("Great coffee, really good. Too bitter for me!<br />Would buy it again? ok then<BR/>Mr. Smith agrees   fully.");
        // "ok then" and "Mr." have fewer than three words.
        Assert.Equal(new[] { "Great coffee, really good.", "Too bitter for me!", "Would buy it again?", "Smith agrees   fully." }, sentences);
    }

    [Fact]
    public void AddSentencesGivesEachSentenceAndEachAdjacentPair()
    {
        var plan = SentenceTransferSet.Plan(new[] { "One two three. Four five six! Seven eight nine?", "Just one sentence here." },
            new TextDistillationOptions { AddSentences = true }, seed: 1);

        Assert.Equal(new[] { "One two three.", "Four five six!", "Seven eight nine?", "One two three. Four five six!", "Four five six! Seven eight nine?" }, plan[0]);
        Assert.Empty(plan[1]); // a one-sentence text is already a row of its own
    }

    [Fact]
    public void LeaveOneSentenceOutDropsEachSentenceSometimesAndKeepsTheOrder()
    {
        string[] sentences = { "One two three.", "Four five six!", "Seven eight nine?" };
        var seen = new HashSet<string>();
        for (int seed = 0; seed < 40; seed++)
        {
            var plan = SentenceTransferSet.Plan(new[] { string.Join(" ", sentences), "Only two sentences. Here they are." },
                new TextDistillationOptions { AddLeaveOneSentenceOut = true }, seed);
            Assert.Empty(plan[1]); // fewer than three sentences: leaving one out would only repeat a sentence
            var derived = Assert.Single(plan[0]);
            Assert.Contains(derived, new[] { $"{sentences[1]} {sentences[2]}", $"{sentences[0]} {sentences[2]}", $"{sentences[0]} {sentences[1]}" });
            seen.Add(derived);
        }
        Assert.Equal(3, seen.Count);
    }

    [Fact]
    public void RecombinedRowsJoinTwoToFourTrainingSentencesAndAreReproducible()
    {
        var texts = Enumerable.Range(0, 30).Select(i => $"Text {i} sentence one. Text {i} sentence two! Text {i} sentence three?").ToArray();
        var trainingSentences = texts.SelectMany(SentenceTransferSet.Sentences).ToHashSet();
        var options = new TextDistillationOptions { RecombinedSentenceRows = 300 };

        var plan = SentenceTransferSet.Plan(texts, options, seed: 7);

        var recombined = plan.SelectMany(p => p).ToList();
        Assert.Equal(300, recombined.Count);
        var sizes = recombined.Select(text => SentenceTransferSet.Sentences(text)).ToList();
        Assert.All(sizes, parts => Assert.All(parts, part => Assert.Contains(part, trainingSentences)));
        Assert.Equal(new[] { 2, 3, 4 }, sizes.Select(p => p.Count).Distinct().Order());
        Assert.True(plan.Count(p => p.Count > 0) > 20, "recombined rows should be spread over the source rows");
        Assert.Equal(recombined, SentenceTransferSet.Plan(texts, options, seed: 7).SelectMany(p => p));
        Assert.NotEqual(recombined, SentenceTransferSet.Plan(texts, options, seed: 8).SelectMany(p => p));
    }

    [Fact]
    public void RecombiningTextsWithoutSentencesIsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            SentenceTransferSet.Plan(new[] { "too short", "" }, new TextDistillationOptions { RecombinedSentenceRows = 5 }, seed: 1));
        Assert.Equal("RecombinedSentenceRows is 5, but no training text has a sentence of three or more words to recombine.", e.Message);
    }

    private sealed class WeightedRow
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }

        public float Weight { get; set; }
    }

    private sealed class ExpandedRow
    {
        public string Text { get; set; } = "";

        public float Label { get; set; }

        public float Weight { get; set; }
    }

    [Fact]
    public void AddedRowsFollowTheirSourceRowUnlabeledAndShareItsOtherColumns()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[]
        {
            new WeightedRow { Text = "One two three. Four five six.", Label = true, Weight = 2 },
            new WeightedRow { Text = "Single sentence only here.", Label = false, Weight = 3 },
            new WeightedRow { Text = "Seven eight nine! Ten eleven twelve?", Label = false, Weight = 5 },
        });

        var view = SentenceRowsDataView.Create(data, "Text", "Label", new TextDistillationOptions { AddSentences = true }, seed: 1, CancellationToken.None);

        Assert.Equal(NumberDataViewType.Single, view.Schema["Label"].Type); // a Boolean label cannot be missing, so it becomes Single
        var rows = ml.Data.CreateEnumerable<ExpandedRow>(view, reuseRowObject: false).ToList();
        var expected = new (string Text, float Label, float Weight)[]
        {
            ("One two three. Four five six.", 1, 2), ("One two three.", float.NaN, 2), ("Four five six.", float.NaN, 2), ("One two three. Four five six.", float.NaN, 2),
            ("Single sentence only here.", 0, 3),
            ("Seven eight nine! Ten eleven twelve?", 0, 5), ("Seven eight nine!", float.NaN, 5), ("Ten eleven twelve?", float.NaN, 5), ("Seven eight nine! Ten eleven twelve?", float.NaN, 5),
        };
        Assert.Equal(expected, rows.Select(r => (r.Text, r.Label, r.Weight)));
        Assert.Equal(expected.Length, view.GetRowCount());
        Assert.Equal(6, view.AddedRows);
    }

    private sealed class KeyRow
    {
        public string Text { get; set; } = "";

        public string Class { get; set; } = "";
    }

    private sealed class KeyOut
    {
        public uint Label { get; set; }
    }

    [Fact]
    public void AddedRowsOfAKeyLabelHaveTheMissingKey()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(new[]
        {
            new KeyRow { Text = "One two three. Four five six.", Class = "a" },
            new KeyRow { Text = "Seven eight nine.", Class = "b" },
        });
        var data = ml.Transforms.Conversion.MapValueToKey("Label", "Class").Fit(raw).Transform(raw);

        var view = SentenceRowsDataView.Create(data, "Text", "Label", new TextDistillationOptions { AddSentences = true }, seed: 1, CancellationToken.None);

        Assert.IsType<KeyDataViewType>(view.Schema["Label"].Type);
        Assert.Equal(new uint[] { 1, 0, 0, 0, 2 }, ml.Data.CreateEnumerable<KeyOut>(view, reuseRowObject: false).Select(r => r.Label));
    }

    private sealed class DoubleLabelRow
    {
        public string Text { get; set; } = "";

        public double Label { get; set; }
    }

    [Fact]
    public void ALabelThatCannotBeMissingIsAnError()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new DoubleLabelRow { Text = "One two three.", Label = 1 } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            SentenceRowsDataView.Create(data, "Text", "Label", new TextDistillationOptions { AddSentences = true }, seed: 1, CancellationToken.None));
        Assert.StartsWith("The label column 'Label' must be Boolean, Single or Key<UInt32> (a type that can mark the added rows unlabeled); found Double.", e.Message);
    }

    /// <summary>Texts of two or three TinyText sentences of the same sentiment; <see cref="Sentences"/> says how many.</summary>
    private sealed class ReviewRow
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }

        public float Sentences { get; set; }
    }

    private static List<ReviewRow> Reviews(int count, int seed)
    {
        var random = new Random(seed);
        var positive = TinyText.Make(2 * count, seed).Where(r => r.Label).Select(r => r.Text).ToArray();
        var negative = TinyText.Make(2 * count, seed + 100).Where(r => !r.Label).Select(r => r.Text).ToArray();
        var rows = new List<ReviewRow>();
        for (int i = 0; i < count; i++)
        {
            bool label = i % 2 == 0;
            var pool = label ? positive : negative;
            int k = random.Next(2, 4);
            // Three or more words per sentence, so every one counts as a sentence.
            var sentences = Enumerable.Range(0, k).Select(_ => "the box was " + pool[random.Next(pool.Length)] + " .").ToArray();
            rows.Add(new ReviewRow { Text = string.Join(" ", sentences), Label = label, Sentences = k });
        }
        return rows;
    }

    private static TextClassifierOptions TinyStudent(int epochs) => new()
    {
        Encoder = TextEncoderSource.Scratch,
        ScratchVocabulary = TinyText.Vocabulary,
        ScratchConfig = BertConfig.Small(TinyText.Vocabulary.Count, layers: 1, hidden: 16, heads: 2, maxPositions: 96),
        MaxLength = 96,
        Epochs = epochs,
        Seed = 1,
        ValidationFraction = 0.2,
        Optimizer = { LearningRate = 3e-3 },
        LearningRateSchedule = { Kind = LearningRateScheduleKind.Constant },
        EarlyStopping = { Patience = 20 },
    };

    [Fact]
    public void ABuiltInTeacherScoresTheAddedRowsOfTheTrainingPartOnlyAndTheStudentLearns()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Reviews(240, 1));
        var test = ml.Data.LoadFromEnumerable(Reviews(100, 2));
        // Any teacher that reads the text works: here ML.NET's own bag-of-words logistic regression.
        var teacher = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(train);
        var options = new DistillationOptions
        {
            Student = TinyStudent(epochs: 8),
            Text = { AddSentences = true, AddLeaveOneSentenceOut = true, RecombinedSentenceRows = 50 },
        };

        var trainer = ml.BinaryClassification.Trainers.Distill(teacher, options);
        var student = trainer.Fit(train);

        // The student's validation split (seed 1, 20 %) is held out before any row is added: the teacher scores the training
        // part and, for each of its texts of k sentences, k sentences and k − 1 pairs (k ≥ 2), one text with a sentence left out
        // (k ≥ 3), plus the 50 recombined texts.
        var trainingPart = ml.Data.CreateEnumerable<ReviewRow>(ml.Data.TrainTestSplit(train, 0.2, seed: 1).TrainSet, reuseRowObject: false).ToList();
        long expected = trainingPart.Sum(r => 1 + (2 * (int)r.Sentences - 1) + (r.Sentences >= 3 ? 1 : 0)) + 50;
        Assert.Equal(expected, trainer.LastReport!.RowsScored);
        Assert.Null(options.Student.ValidationData); // the hold-out given to the student for this run is not left behind

        var metrics = ml.BinaryClassification.Evaluate(student.Transform(test));
        _output.WriteLine($"accuracy {metrics.Accuracy:P1}; {trainer.LastReport}");
        Assert.True(metrics.Accuracy >= 0.9, $"accuracy {metrics.Accuracy}");
    }

    [Fact]
    public void SentenceRowsNeedASingleTextStudent()
    {
        var ml = new MLContext(seed: 1);
        var teacher = new TransformerChain<ITransformer>();
        var pairs = TinyStudent(1);
        pairs.SecondTextColumnName = "Other";
        var e = Assert.Throws<ArgumentException>(() =>
            ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = pairs, Text = { AddSentences = true } }));
        Assert.StartsWith("AddSentences, AddLeaveOneSentenceOut and RecombinedSentenceRows work on single texts; the student reads text pairs ('Text', 'Other').", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = new NeuralNetworkOptions(), Text = { AddLeaveOneSentenceOut = true } }));
        Assert.StartsWith("AddSentences, AddLeaveOneSentenceOut and RecombinedSentenceRows need a TextClassifierOptions student: they add rows of its text column.", e.Message);

        var negative = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.BinaryClassification.Trainers.Distill(teacher, new DistillationOptions { Student = TinyStudent(1), Text = { RecombinedSentenceRows = -1 } }));
        Assert.StartsWith("RecombinedSentenceRows must be ≥ 0; found -1.", negative.Message);
    }
}
