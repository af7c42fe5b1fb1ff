using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using MLExtensions.Tests.Vision;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>Gradient explanations of the library's trained networks: completeness, model dependence, persistence.</summary>
public class ExplanationNetworkTests
{
    private static (IDataView Data, NeuralNetworkTransformer Model) WineMlp(MLContext ml)
    {
        var wine = TabularData.LoadWine(ml);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine);
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 16 }, Epochs = 10, Seed = 1, Activation = Activation.GELU }).Fit(data);
        return (data, model);
    }

    private static (IDataView Data, ImageClassifierTransformer Model) ImageCnn(MLContext ml, int epochs = 4)
    {
        var rows = ml.Data.LoadFromEnumerable(SyntheticImages.Make(150, 1));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = SyntheticImages.Size, ImageWidth = SyntheticImages.Size,
            Epochs = epochs, BatchSize = 32, Seed = 3,
        }).Fit(data);
        return (data, model);
    }

    private static void AssertComplete(IEnumerable<(float[] Attributions, float BaseValue, float Delta)> rows, IDataView scored, string what)
    {
        foreach (var (row, score) in rows.Zip(Scores(scored)))
        {
            double change = Math.Abs(score - row.BaseValue);
            Assert.True(Math.Abs(row.Delta) <= 1e-2 * change + 1e-5, $"{what}: |delta| {Math.Abs(row.Delta)} vs |f(x) − base| {change}");
        }
    }

    /// <summary>The explained output f(x) of each row: Score[ExplainedClass] or Score.</summary>
    private static IEnumerable<float> Scores(IDataView explained)
    {
        var score = explained.Schema["Score"];
        var target = explained.Schema.GetColumnOrNull(ExplanationTransformer.ExplainedClassColumn);
        using var cursor = explained.GetRowCursor(target is null ? new[] { score } : new[] { score, target.Value });
        uint k = 1;
        if (score.Type is VectorDataViewType)
        {
            var getTarget = cursor.GetGetter<uint>(target!.Value);
            var get = cursor.GetGetter<VBuffer<float>>(score);
            VBuffer<float> v = default;
            while (cursor.MoveNext())
            {
                get(ref v);
                getTarget(ref k);
                yield return v.GetItemOrDefault((int)k - 1);
            }
        }
        else
        {
            // Binary models: ExplainedClass false means the negative class, whose logit is −Score.
            var getPositive = target is null ? null : cursor.GetGetter<bool>(target.Value);
            var get = cursor.GetGetter<float>(score);
            float v = 0;
            bool positive = true;
            while (cursor.MoveNext())
            {
                get(ref v);
                getPositive?.Invoke(ref positive);
                yield return positive ? v : -v;
            }
        }
    }

    [Fact]
    public void IntegratedGradientsAreCompleteOnTheMlpAndExplainThePredictedClass()
    {
        var ml = new MLContext(seed: 1);
        var (data, model) = WineMlp(ml);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(data);
        var sample = ml.Data.TakeRows(data, 12);
        var explained = explainer.Transform(model.Transform(sample));
        AssertComplete(Read(explained), explained, "MLP");
        // ExplainedClass is the predicted class, with the same key values.
        var predicted = explained.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.Equal(predicted, explained.GetColumn<uint>(ExplanationTransformer.ExplainedClassColumn).ToArray());
        VBuffer<float> modelKeys = default, explainedKeys = default;
        explained.Schema["PredictedLabel"].GetKeyValues(ref modelKeys);
        explained.Schema[ExplanationTransformer.ExplainedClassColumn].GetKeyValues(ref explainedKeys);
        Assert.Equal(modelKeys.DenseValues(), explainedKeys.DenseValues());
        Assert.Equal(13, (explained.Schema[ExplanationTransformer.AttributionsColumn].Type as VectorDataViewType)!.Size);
    }

    [Fact]
    public void GradientShapAndDeepLiftShapOnTheMlpSumToTheOutputMinusTheExpectedOutput()
    {
        var ml = new MLContext(seed: 1);
        var (data, model) = WineMlp(ml);
        var sample = ml.Data.TakeRows(data, 6);
        var deep = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap, BackgroundRows = 40, TargetClass = 1 }).Fit(data);
        foreach (var row in Read(deep.Transform(sample)))
            Assert.True(Math.Abs(row.Delta) < 1e-4, $"DeepLiftShap delta {row.Delta}");
        // Both use the same references, so the same expected output.
        var gradient = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.GradientShap, BackgroundRows = 40, TargetClass = 1 }).Fit(data);
        Assert.Equal(Read(deep.Transform(sample)).Select(r => r.BaseValue), Read(gradient.Transform(sample)).Select(r => r.BaseValue));
        // With one reference, expected gradients are a Monte Carlo estimate of integrated gradients: complete up to sampling error.
        var mean = ml.Data.CreateEnumerable<WineFeatures>(data, false).Select(r => r.Features).Aggregate(new float[13], (m, r) => m.Zip(r, (a, b) => a + b / 178f).ToArray());
        var single = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.GradientShap, Baseline = BaselineKind.Given, BaselineValues = mean, Samples = 1000, TargetClass = 1 }).Fit(data);
        foreach (var row in Read(single.Transform(sample)))
        {
            double change = row.Attributions.Sum() - row.Delta;
            Assert.True(Math.Abs(row.Delta) <= 0.1 * Math.Abs(change) + 1e-3, $"GradientShap delta {row.Delta} for change {change}");
        }
    }

    [Fact]
    public void IntegratedGradientsAndDeepLiftAreCompleteOnTheCnn()
    {
        var ml = new MLContext(seed: 1);
        var (data, model) = ImageCnn(ml);
        var sample = ml.Data.TakeRows(data, 4);
        var ig = ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(data);
        var explained = ig.Transform(model.Transform(sample));
        AssertComplete(Read(explained), explained, "CNN");
        Assert.Equal(SyntheticImages.Size * SyntheticImages.Size, (explained.Schema[ExplanationTransformer.AttributionsColumn].Type as VectorDataViewType)!.Size);
        // shap's DeepExplainer asserts completeness to 1e-2; float32 multipliers Δy/Δx lose digits where Δx is small.
        var deep = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap, BackgroundRows = 8 }).Fit(data);
        var deepExplained = deep.Transform(model.Transform(sample));
        AssertComplete(Read(deepExplained), deepExplained, "CNN DeepLiftShap (max pooling and ReLU rules)");
    }

    [Fact]
    public void CnnAttributionsDependOnTheWeights()
    {
        // Adebayo et al. 2018: a trained CNN and the same CNN with re-initialised weights must explain differently. Their
        // test is on gradients: x·gradient methods are partly dominated by the input itself.
        var ml = new MLContext(seed: 1);
        var (data, model) = ImageCnn(ml, epochs: 6);
        var sample = ml.Data.TakeRows(data, 3);
        var options = new ExplanationOptions { Method = ExplanationMethod.Saliency, TargetClass = 0 };
        var trained = Read(ml.Transforms.ExplainPredictions(model, options).Fit(data).Transform(sample));
        using (torch.no_grad())
        {
            var generator = new torch.Generator(99, torch.CPU);
            foreach (var (name, parameter) in model.Classifier.Network.named_parameters())
            {
                if (name.EndsWith("weight") && parameter.dim() > 1)
                    parameter.normal_(0, 0.1, generator);
            }
        }
        var randomised = Read(ml.Transforms.ExplainPredictions(model, options).Fit(data).Transform(sample));
        foreach (var (a, b) in trained.Zip(randomised))
        {
            double rho = SpearmanCorrelation(a.Attributions.Select(v => (double)Math.Abs(v)).ToArray(), b.Attributions.Select(v => (double)Math.Abs(v)).ToArray());
            Assert.True(rho < 0.5, $"rank correlation {rho}");
        }
    }

    [Fact]
    public void TextIntegratedGradientsArePerWordPieceAndComplete()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TinyText.Make(200, 1));
        var model = ml.BinaryClassification.Trainers.TextClassifier(TinyText.ScratchClassifier(hidden: 32, maxPositions: 64, maxLength: 32, epochs: 3)).Fit(data);
        var sample = ml.Data.LoadFromEnumerable(new[] { new TinyText.Row { Text = "the coffee was great" }, new TinyText.Row { Text = "very stale cookies" } });
        var explained = ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(data).Transform(model.Transform(sample));
        var tokens = explained.GetColumn<VBuffer<ReadOnlyMemory<char>>>(ExplanationTransformer.TokensColumn).Select(t => t.DenseValues().Select(x => x.ToString()).ToArray()).ToList();
        Assert.Equal(new[] { "[CLS]", "the", "coffee", "was", "great", "[SEP]" }, tokens[0]);
        var rows = Read(explained);
        Assert.Equal(tokens.Select(t => t.Length), rows.Select(r => r.Attributions.Length));
        AssertComplete(rows, explained, "text");
    }

    [Fact]
    public void SavedExplanationGivesIdenticalValuesAfterLoadInAFreshProcessAndInAPredictionEngine()
    {
        var ml = new MLContext(seed: 1);
        var (data, model) = WineMlp(ml);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Steps = 16 }).Fit(data);
        var sample = ml.Data.TakeRows(data, 5);
        using var temp = new TempDirectory();
        string path = temp.File("explain.zip");
        ml.Model.Save(explainer, data.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var expected = PredictionDump.Lines(explainer.Transform(sample)).ToArray();
        Assert.Equal(expected, PredictionDump.Lines(loaded.Transform(sample)));

        var rows = ml.Data.CreateEnumerable<WineFeatures>(sample, false).Select(r => r.Features).ToList();
        var fresh = FreshProcess.Predict(path, rows, temp.Path);
        Assert.Equal("# MLExtensions loaded before Model.Load: False", fresh[0]);
        Assert.Equal(expected, fresh.Skip(1));

        var engine = ml.Model.CreatePredictionEngine<WineFeatures, ExplanationRow>(loaded);
        var first = Read(explainer.Transform(sample))[0];
        var single = engine.Predict(new WineFeatures { Features = rows[0] });
        Assert.Equal(first.Attributions, single.Attributions);
        Assert.Equal(first.BaseValue, single.BaseValue);
    }

    public sealed class WineFeatures
    {
        [VectorType(13)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    public sealed class ExplanationRow
    {
        public float[] Attributions { get; set; } = Array.Empty<float>();

        public float BaseValue { get; set; }

        public float ConvergenceDelta { get; set; }
    }
}
