using Microsoft.ML;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using MLExtensions.Text;
using MLExtensions.WebApi;

namespace MLExtensions.WebApi.Tests;

/// <summary>
/// Two small text classifiers with a <c>Text</c> column, trained once for all tests (a few seconds each): <see cref="First"/>
/// learns the synthetic sentiment rule; <see cref="Second"/> is trained on flipped labels, so its predictions are the
/// opposite and a reload is visible in every answer.
/// </summary>
public sealed class ReviewModels : IDisposable
{
    private readonly TempDirectory _folder = new();

    public ReviewModels()
    {
        var ml = new MLContext(seed: 1);
        var rows = TinyText.Make(200, seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var flipped = ml.Data.LoadFromEnumerable(rows.Select(r => new TinyText.Row { Text = r.Text, Label = !r.Label }).ToList());
        First = _folder.File("first.zip");
        Second = _folder.File("second.zip");
        ml.Model.Save(ml.BinaryClassification.Trainers.TextClassifier(Options()).Fit(data), data.Schema, First);
        ml.Model.Save(ml.BinaryClassification.Trainers.TextClassifier(Options()).Fit(flipped), flipped.Schema, Second);
    }

    /// <summary>A model that predicts positive for the positive sentiment words.</summary>
    public string First { get; }

    /// <summary>A model that predicts the opposite.</summary>
    public string Second { get; }

    /// <summary>A fresh folder for one test's copy of a model (the served file is watched and may be replaced).</summary>
    public TempDirectory NewFolder() => new();

    /// <summary>Scores <paramref name="texts"/> in-process with a PredictionEngine over the model file.</summary>
    public static IReadOnlyList<ReviewPrediction> ScoreInProcess(string modelPath, IEnumerable<string> texts)
    {
        var ml = new MLContext();
        var model = ml.Model.Load(modelPath, out _);
        var engine = ml.Model.CreatePredictionEngine<ReviewInput, ReviewPrediction>(model);
        return texts.Select(t => engine.Predict(new ReviewInput { Text = t })).ToList();
    }

    public void Dispose() => _folder.Dispose();

    private static TextClassifierOptions Options() => new()
    {
        Encoder = TextEncoderSource.Scratch,
        ScratchVocabulary = TinyText.Vocabulary,
        ScratchConfig = BertConfig.Small(TinyText.Vocabulary.Count, layers: 1, hidden: 32, heads: 2, maxPositions: 64),
        MaxLength = 32,
        Epochs = 8,
        BatchSize = 16,
        Seed = 1,
        Optimizer = { LearningRate = 3e-3 },
        LearningRateSchedule = { Kind = MLExtensions.Core.LearningRateScheduleKind.Constant },
        EarlyStopping = { Patience = 20 },
    };
}
