using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>The estimator's output schema against the fitted transformer's, and the ExplainedClass column of each task.</summary>
public class ExplanationSchemaTests
{
    /// <summary>Every column of the transformed schema is in the estimator's shape with the same kind, item type, key flag and annotation names, and no other.</summary>
    internal static void AssertSameShape(SchemaShape estimated, DataViewSchema transformed)
    {
        var actual = ShapeOf(transformed);
        Assert.Equal(actual.Select(c => c.Name).OrderBy(n => n), estimated.Select(c => c.Name).OrderBy(n => n));
        foreach (var column in actual)
        {
            var found = estimated.Single(c => c.Name == column.Name);
            Assert.True(column.Kind == found.Kind, $"{column.Name}: kind {found.Kind}, transformer {column.Kind}");
            Assert.True(column.ItemType.Equals(found.ItemType), $"{column.Name}: item type {found.ItemType}, transformer {column.ItemType}");
            Assert.True(column.IsKey == found.IsKey, $"{column.Name}: key {found.IsKey}, transformer {column.IsKey}");
            if (column.Name is ExplanationTransformer.ExplainedClassColumn or ExplanationTransformer.AttributionsColumn)
                Assert.Equal(column.Annotations.Select(a => (a.Name, a.ItemType)), found.Annotations.Select(a => (a.Name, a.ItemType)));
        }
    }

    /// <summary>ML.NET's own DataViewSchema → SchemaShape conversion (internal to ML.NET, which estimators get from pipelines).</summary>
    internal static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!
            .Invoke(null, new object[] { schema })!;

    private static void AssertSchemaOfEstimatorIsTheTransformers(MLContext ml, ITransformer model, ExplanationOptions options, IDataView data)
    {
        var estimator = ml.Transforms.ExplainPredictions(model, options);
        var explainer = estimator.Fit(data);
        AssertSameShape(estimator.GetOutputSchema(ShapeOf(data.Schema)), explainer.Transform(data).Schema);
        // After the model too: the task is then also visible in the Score and PredictedLabel columns.
        var scored = model.Transform(data);
        AssertSameShape(estimator.GetOutputSchema(ShapeOf(scored.Schema)), explainer.Transform(scored).Schema);
    }

    [Fact]
    public void EstimatorSchemaIsTheTransformersForAMulticlassMlpTextClassifiersAndRegressionModels()
    {
        var ml = new MLContext(seed: 1);
        var wine = TabularData.LoadWine(ml);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine);
        var mlp = ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Epochs = 1, Seed = 1 }).Fit(keyed);
        AssertSchemaOfEstimatorIsTheTransformers(ml, mlp, new ExplanationOptions { Steps = 4 }, keyed);

        var text = ml.Data.LoadFromEnumerable(TinyText.Make(40, 1));
        var classifier = ml.BinaryClassification.Trainers.TextClassifier(TinyText.ScratchClassifier(hidden: 16, maxPositions: 32, maxLength: 16, epochs: 1)).Fit(text);
        AssertSchemaOfEstimatorIsTheTransformers(ml, classifier, new ExplanationOptions { Steps = 4 }, ml.Data.TakeRows(text, 3));
        // KernelSHAP on the raw text of a whole pipeline: Tokens and a Boolean ExplainedClass too.
        var bagOfWords = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(text);
        AssertSchemaOfEstimatorIsTheTransformers(ml, bagOfWords, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Text", Samples = 20 }, ml.Data.TakeRows(text, 2));

        var regression = ml.Regression.Trainers.Sdca(new Microsoft.ML.Trainers.SdcaRegressionTrainer.Options { MaximumNumberOfIterations = 2 }).Fit(wine);
        AssertSchemaOfEstimatorIsTheTransformers(ml, regression, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 3, Samples = 30 }, ml.Data.TakeRows(wine, 3));
        var multiclassLinear = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new Microsoft.ML.Trainers.SdcaMaximumEntropyMulticlassTrainer.Options { MaximumNumberOfIterations = 2 }).Fit(keyed);
        AssertSchemaOfEstimatorIsTheTransformers(ml, multiclassLinear, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 3, Samples = 30 }, ml.Data.TakeRows(keyed, 3));
    }

    /// <summary>Four features, label = the sign of a linear function with noise.</summary>
    private static IDataView BinaryRows(MLContext ml, int count, int seed)
    {
        var random = new Random(seed);
        var rows = RandomRows(count, 4, seed).Select(f => new BinaryRow { Features = f, Label = f[0] - 2 * f[1] + 0.5 * f[2] + random.NextDouble() - 0.5 > 0 }).ToList();
        return ml.Data.LoadFromEnumerable(rows, Definition<BinaryRow>(4));
    }

    public sealed class BinaryRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }

    [Fact]
    public void BinaryMlpExplainsThePositiveClassByDefaultWithABooleanExplainedClass()
    {
        var ml = new MLContext(seed: 1);
        var data = BinaryRows(ml, 120, 3);
        var model = ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Epochs = 5, Seed = 1 }).Fit(data);
        var sample = model.Transform(ml.Data.TakeRows(data, 5));
        var positive = ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(data).Transform(sample);
        Assert.Equal(BooleanDataViewType.Instance, positive.Schema[ExplanationTransformer.ExplainedClassColumn].Type);
        Assert.All(positive.GetColumn<bool>(ExplanationTransformer.ExplainedClassColumn), Assert.True);
        var scores = positive.GetColumn<float>("Score").ToArray();
        var rows = Read(positive);
        // The explained output is the Score: Σ attributions − ConvergenceDelta = Score − BaseValue (IG's own error is in the delta).
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(scores[i] - rows[i].BaseValue, rows[i].Attributions.Sum() - rows[i].Delta, 4);

        // The negative class's logit is −Score: every value changes sign.
        var negative = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { TargetClass = 0 }).Fit(data).Transform(sample);
        Assert.All(negative.GetColumn<bool>(ExplanationTransformer.ExplainedClassColumn), Assert.False);
        foreach (var (p, n) in rows.Zip(Read(negative)))
        {
            Assert.Equal(-p.BaseValue, n.BaseValue, 5);
            Assert.Equal(p.Attributions.Select(v => -(double)v), n.Attributions.Select(v => (double)v), new Tolerance(1e-5));
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.ExplainPredictions(model, new ExplanationOptions { TargetClass = 2 }).Fit(data));
        Assert.StartsWith("TargetClass 2 is outside the classes: the model is a binary classifier", e.Message);
    }

    [Fact]
    public void KernelShapOnBinarySdcaAndLightGbmGivesExactShapleyValuesAndABooleanExplainedClass()
    {
        var ml = new MLContext(seed: 1);
        var data = BinaryRows(ml, 200, 5);
        var background = ml.Data.CreateEnumerable<BinaryRow>(data, false).Take(20).Select(r => r.Features).ToList();
        var sample = ml.Data.TakeRows(ml.Data.SkipRows(data, 100), 4);
        var rows = ml.Data.CreateEnumerable<BinaryRow>(sample, false).Select(r => r.Features).ToList();
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 20 };

        // SDCA logistic regression: Score = w·x + b, so φ = w ∘ (x − mean of the background), exactly.
        var sdca = ml.BinaryClassification.Trainers.SdcaLogisticRegression(new Microsoft.ML.Trainers.SdcaLogisticRegressionBinaryTrainer.Options { MaximumNumberOfIterations = 20 }).Fit(data);
        var weights = sdca.Model.SubModel.Weights.ToArray();
        var explained = ml.Transforms.ExplainPredictions(sdca, options).Fit(data).Transform(sample);
        Assert.Equal(BooleanDataViewType.Instance, explained.Schema[ExplanationTransformer.ExplainedClassColumn].Type);
        Assert.All(explained.GetColumn<bool>(ExplanationTransformer.ExplainedClassColumn), Assert.True);
        var mean = Enumerable.Range(0, 4).Select(j => background.Average(r => (double)r[j])).ToArray();
        foreach (var (row, x) in Read(explained).Zip(rows))
            Assert.Equal(x.Select((v, j) => weights[j] * (v - mean[j])), row.Attributions.Select(v => (double)v), new Tolerance(1e-3));

        // LightGbm: no closed form; brute force over all 2⁴ coalitions through the model itself.
        var trees = ml.BinaryClassification.Trainers.LightGbm(new Microsoft.ML.Trainers.LightGbm.LightGbmBinaryTrainer.Options { NumberOfIterations = 20, MinimumExampleCountPerLeaf = 5 }).Fit(data);
        var engine = ml.Model.CreatePredictionEngine<BinaryRow, BinaryPrediction>(trees, inputSchemaDefinition: Definition<BinaryRow>(4));
        float F(float[] x) => engine.Predict(new BinaryRow { Features = x }).Score;
        var negative = ml.Transforms.ExplainPredictions(trees, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 20, TargetClass = 0 }).Fit(data).Transform(sample);
        Assert.All(negative.GetColumn<bool>(ExplanationTransformer.ExplainedClassColumn), Assert.False);
        foreach (var (row, x) in Read(negative).Zip(rows))
        {
            var expected = BruteForceShapley(z => -F(z), x, background);
            Assert.Equal(expected, row.Attributions.Select(v => (double)v), new Tolerance(1e-3));
            Assert.True(Math.Abs(row.Delta) < 1e-3, $"delta {row.Delta}");
        }
    }
}
