using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>KernelSHAP on whole ML.NET pipelines: other input columns copied, raw text (players = words), image patches.</summary>
public class ExplanationPipelineTests
{
    public sealed class MixedRow
    {
        [VectorType(4)]
        public float[] Measurements { get; set; } = Array.Empty<float>();

        public float Age { get; set; }

        public string Group { get; set; } = "";

        public float Label { get; set; }
    }

    private static List<MixedRow> MixedRows(int count, int seed)
    {
        var random = new Random(seed);
        string[] groups = { "a", "b", "c" };
        return Enumerable.Range(0, count).Select(_ =>
        {
            var m = Enumerable.Range(0, 4).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
            float age = (float)(random.NextDouble() * 60 + 20);
            string group = groups[random.Next(3)];
            // The measurements interact with the other columns, so they must be scored with the row's own Age and Group.
            float label = m[0] * (group == "a" ? 3 : 1) + m[1] * age / 20 - m[2] * m[3] + (float)random.NextDouble() * 0.1f;
            return new MixedRow { Measurements = m, Age = age, Group = group, Label = label };
        }).ToList();
    }

    [Fact]
    public void KernelShapOnALightGbmPipelineCopiesTheOtherColumnsAndMatchesBruteForceShapleyValues()
    {
        var ml = new MLContext(seed: 1);
        var rows = MixedRows(300, 4);
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Categorical.OneHotEncoding("GroupCode", "Group")
            .Append(ml.Transforms.Concatenate("Features", "Measurements", "Age", "GroupCode"))
            .Append(ml.Regression.Trainers.LightGbm(new Microsoft.ML.Trainers.LightGbm.LightGbmRegressionTrainer.Options { NumberOfIterations = 30, MinimumExampleCountPerLeaf = 5 }))
            .Fit(data);
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Measurements", BackgroundRows = 10 };
        var explainer = ml.Transforms.ExplainPredictions(model, options).Fit(data);
        var explained = rows.Skip(200).Take(3).ToList();
        var result = Read(explainer.Transform(ml.Data.LoadFromEnumerable(explained)));

        // Oracle: v(S) = mean over the 10 background rows of the pipeline's prediction for the explained row with the
        // measurements of S from the row and the others from the background row — Age and Group always the row's own.
        var engine = ml.Model.CreatePredictionEngine<MixedRow, RegressionPrediction>(model);
        var background = rows.Take(10).Select(r => r.Measurements).ToList();
        for (int i = 0; i < explained.Count; i++)
        {
            var row = explained[i];
            float F(float[] m) => engine.Predict(new MixedRow { Measurements = m, Age = row.Age, Group = row.Group }).Score;
            var expected = BruteForceShapley(F, row.Measurements, background);
            Assert.Equal(expected, result[i].Attributions.Select(v => (double)v), new Tolerance(1e-3));
            Assert.Equal(background.Average(F), result[i].BaseValue, 3);
            Assert.True(Math.Abs(result[i].Delta) < 1e-3, $"delta {result[i].Delta}");
        }
    }

    [Fact]
    public void KernelShapOnAFunctionOfTwoColumnsUsesTheExplainedRowsOtherColumn()
    {
        // f = m0 + 2·m1 + Scale·m2 with Scale another column: φ = (x − mean) ∘ [1, 2, Scale of the row] exactly.
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.CustomMapping<ScaledRow, ScoreRow>((row, score) => score.Score = row.Features[0] + 2 * row.Features[1] + row.Scale * row.Features[2], null)
            .Fit(ml.Data.LoadFromEnumerable(new[] { new ScaledRow { Features = new float[3] } }));
        var background = RandomRows(20, 3, 5);
        var backgroundData = ml.Data.LoadFromEnumerable(background.Select(f => new ScaledRow { Features = f, Scale = 100 }).ToList());
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap }).Fit(backgroundData);
        var x = new ScaledRow { Features = new[] { 1f, -1f, 2f }, Scale = -3 };
        var row = Read(explainer.Transform(ml.Data.LoadFromEnumerable(new[] { x }))).Single();
        var mean = Enumerable.Range(0, 3).Select(j => background.Average(r => (double)r[j])).ToArray();
        Assert.Equal(new[] { 1 - mean[0], 2 * (-1 - mean[1]), -3 * (2 - mean[2]) }, row.Attributions.Select(v => (double)v), new Tolerance(1e-4));
        Assert.Equal(mean[0] + 2 * mean[1] - 3 * mean[2], row.BaseValue, 3);
    }

    public sealed class ScaledRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Scale { get; set; }
    }

    public sealed class ReviewPrediction
    {
        public float Score { get; set; }
    }

    [Fact]
    public void KernelShapOnRawTextThroughFeaturizeTextAndSdcaGivesTheWordsAndBruteForceShapleyValues()
    {
        var ml = new MLContext(seed: 1);
        var reviews = FineFoods.Load(ml, "train.csv");
        var model = ml.Transforms.Text.FeaturizeText("Features", "Text")
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(new Microsoft.ML.Trainers.SdcaLogisticRegressionBinaryTrainer.Options { MaximumNumberOfIterations = 10 }))
            .Fit(reviews);
        var texts = new[] { "great coffee but the box was crushed", "not good at all save your money", "tasty" };
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Text" }).Fit(reviews);
        var explained = explainer.Transform(ml.Data.LoadFromEnumerable(texts.Select(t => new FineFoods.Row { Text = t }).ToList()));
        Assert.Equal(BooleanDataViewType.Instance, explained.Schema[ExplanationTransformer.ExplainedClassColumn].Type);
        var tokens = explained.GetColumn<VBuffer<ReadOnlyMemory<char>>>(ExplanationTransformer.TokensColumn).Select(t => t.DenseValues().Select(w => w.ToString()).ToArray()).ToList();
        var result = Read(explained);

        // Oracle: v(S) = the pipeline's Score on the words of S (absent words removed), by enumeration of all 2^M coalitions.
        var engine = ml.Model.CreatePredictionEngine<FineFoods.Row, ReviewPrediction>(model);
        for (int i = 0; i < texts.Length; i++)
        {
            var words = texts[i].Split(' ');
            Assert.Equal(words, tokens[i]);
            Assert.Equal(words.Length, result[i].Attributions.Length);
            double V(int coalition) => engine.Predict(new FineFoods.Row { Text = string.Join(' ', words.Where((_, j) => (coalition >> j & 1) == 1)) }).Score;
            var expected = ShapleyValues(words.Length, V);
            Assert.Equal(expected, result[i].Attributions.Select(v => (double)v), new Tolerance(1e-3));
            Assert.Equal(V(0), result[i].BaseValue, 4);
            Assert.True(Math.Abs(result[i].Delta) < 1e-3, $"delta {result[i].Delta}");
        }
        // The sentiment words carry the prediction.
        Assert.Equal("great", tokens[0][Array.IndexOf(result[0].Attributions, result[0].Attributions.Max())]);

        // A text explanation (no background values) saves and loads with the pipeline it explains.
        using var temp = new TempDirectory();
        string path = temp.File("text-explainer.zip");
        ml.Model.Save(explainer, reviews.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var reloaded = Read(loaded.Transform(ml.Data.LoadFromEnumerable(texts.Select(t => new FineFoods.Row { Text = t }).ToList())));
        Assert.Equal(result.Select(r => r.Attributions), reloaded.Select(r => r.Attributions));
    }

    [Fact]
    public void KernelShapOnTextRefusesARowWithoutWordsAndFeatureGroupsThatDoNotCoverTheWords()
    {
        var ml = new MLContext(seed: 1);
        var reviews = ml.Data.LoadFromEnumerable(TinyText.Make(60, 1));
        var model = ml.Transforms.Text.FeaturizeText("Features", "Text").Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression()).Fit(reviews);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Text" }).Fit(reviews);
        var empty = explainer.Transform(ml.Data.LoadFromEnumerable(new[] { new TinyText.Row { Text = "  " } }));
        // ML.NET's parallel cursors wrap exceptions of row getters ("Splitter/consolidator worker encountered …").
        var e = Thrown<InvalidOperationException>(() => Read(empty));
        Assert.StartsWith("KernelShap explains the words of the text column 'Text', but row 0 has none (its text is '  ').", e.Message);

        // Words grouped in pairs: three words leave the third uncovered.
        var grouped = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Text", FeatureGroups = new[] { new[] { 0, 1 } } }).Fit(reviews);
        var pairs = Read(grouped.Transform(ml.Data.LoadFromEnumerable(new[] { new TinyText.Row { Text = "great tea" } }))).Single();
        Assert.Equal(pairs.Attributions[0], pairs.Attributions[1]);
        var three = grouped.Transform(ml.Data.LoadFromEnumerable(new[] { new TinyText.Row { Text = "great tea box" } }));
        var g = Thrown<ArgumentException>(() => Read(three));
        Assert.StartsWith("Every slot must be in exactly one of the FeatureGroups; slot 2 of row 0's 3 words is in 0.", g.Message);

        var numbers = ml.Data.LoadFromEnumerable(new[] { new ScaledRow { Features = new float[3], Scale = 1 } });
        var notText = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, InputColumnName = "Scale" }).Fit(numbers));
        Assert.StartsWith("The explained column 'Scale' must be a vector of a known number of Single values; found Single.", notText.Message);
    }

    [Fact]
    public void KernelShapWithImagePatchesGivesEachPatchItsShareOfALinearModel()
    {
        // A 1×8×8 image as a pixel vector, 2×2 patches of 16 pixels (exact enumeration of the 4 players), f = Σ w·x:
        // each patch's value is Σ over its pixels of w·(x − mean), spread equally over its pixels.
        var ml = new MLContext(seed: 1);
        var weights = Enumerable.Range(0, 64).Select(i => (float)Math.Sin(i)).ToArray();
        var model = Function(ml, 64, x => x.Zip(weights, (a, b) => a * b).Sum());
        var background = RandomRows(6, 64, 7);
        var groups = ImagePatches.Groups(1, 8, 8, 2, 2);
        Assert.Equal(Enumerable.Range(0, 64), groups.SelectMany(g => g).OrderBy(i => i));
        Assert.Equal(new[] { 0, 1, 2, 3, 8, 9, 10, 11 }, groups[0].Take(8));
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, FeatureGroups = groups }).Fit(Rows(ml, background, 64));
        var x = RandomRows(1, 64, 8)[0];
        var row = Read(explainer.Transform(Rows(ml, new[] { x }, 64))).Single();
        foreach (var patch in groups)
        {
            double expected = patch.Sum(i => weights[i] * (x[i] - background.Average(r => (double)r[i])));
            Assert.Equal(expected, patch.Sum(i => (double)row.Attributions[i]), 3);
            Assert.All(patch, i => Assert.Equal(row.Attributions[patch[0]], row.Attributions[i]));
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ImagePatches.Groups(1, 8, 8, 9, 2));
        Assert.StartsWith("gridRows must be between 1 and the image height (8); found 9.", e.Message);
    }
}
