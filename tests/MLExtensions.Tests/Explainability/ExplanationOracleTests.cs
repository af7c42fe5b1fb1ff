using Microsoft.ML;
using MLExtensions.Explainability;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>Explanations against values known independently of the implementation (shap's and captum's own test oracles, brute force).</summary>
public class ExplanationOracleTests
{
    [Fact]
    public void KernelShapOnALinearFunctionGivesDeviationFromTheMeanTimesTheWeights()
    {
        // shap's test_kernel: f = x0 + 2·x1 on 200 × 3 rows → φ = (x − mean)·[1, 2, 0], rtol 1e-3.
        var ml = new MLContext(seed: 1);
        var rows = RandomRows(200, 3, 11);
        var data = Rows(ml, rows, 3);
        var model = Function(ml, 3, x => x[0] + 2 * x[1]);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, BackgroundRows = 200 }).Fit(data);
        var mean = Enumerable.Range(0, 3).Select(j => rows.Average(r => (double)r[j])).ToArray();
        var explained = Read(explainer.Transform(Rows(ml, rows.Take(5), 3)));
        for (int n = 0; n < 5; n++)
        {
            var expected = new[] { rows[n][0] - mean[0], 2 * (rows[n][1] - mean[1]), 0 };
            for (int j = 0; j < 3; j++)
                Assert.True(Math.Abs(explained[n].Attributions[j] - expected[j]) <= 1e-3 * Math.Abs(expected[j]) + 1e-4, $"row {n} feature {j}: {explained[n].Attributions[j]} vs {expected[j]}");
            Assert.Equal(mean[0] + 2 * mean[1], explained[n].BaseValue, 3);
        }
    }

    [Theory]
    [InlineData(0f, 0f, 0f, 76.667, 196.667, 116.667)]
    [InlineData(10f, 20f, 10f, 40.0, 120.0, 80.0)]
    public void KernelShapMatchesCaptumsExactShapleyValuesOfBasicModelMultiLayer(float b0, float b1, float b2, double e0, double e1, double e2)
    {
        var ml = new MLContext(seed: 1);
        var model = Function(ml, 3, BasicModelMultiLayer);
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, Baseline = BaselineKind.Given, BaselineValues = new[] { b0, b1, b2 } };
        var explainer = ml.Transforms.ExplainPredictions(model, options).Fit(Rows(ml, RandomRows(4, 3, 2), 3));
        var row = Read(explainer.Transform(Rows(ml, new[] { new[] { 20f, 50f, 30f } }, 3))).Single();
        Assert.Equal(new[] { e0, e1, e2 }, row.Attributions.Select(v => (double)v), new Tolerance(1e-3));
        Assert.True(Math.Abs(row.Delta) < 1e-3, $"delta {row.Delta}");
    }

    [Fact]
    public void KernelShapOnBasicModelMultiLayerRebuiltAsAnMlpMatchesTheExactShapleyValues()
    {
        // The same network as library MLP weights (identity, ones(4×3) + [−10, 1, 1, 1], ReLU, ones(1×4) − 1): KernelSHAP
        // explains the library's own transformer through Transform like any other model.
        var ml = new MLContext(seed: 1);
        var mlp = MlpWithWeights(ml, 3, new[] { 3, 4 }, net =>
        {
            var layers = net.Body.children().OfType<TorchSharp.Modules.Linear>().ToList();
            layers[0].weight!.copy_(TorchSharp.torch.eye(3));
            layers[0].bias!.zero_();
            layers[1].weight!.copy_(TorchSharp.torch.ones(4, 3));
            layers[1].bias!.copy_(TorchSharp.torch.tensor(new float[] { -10, 1, 1, 1 }));
            net.Head.weight!.copy_(TorchSharp.torch.ones(1, 4));
            net.Head.bias!.fill_(-1);
        });
        var options = new ExplanationOptions { Method = ExplanationMethod.KernelShap, Baseline = BaselineKind.Zeros };
        var explainer = ml.Transforms.ExplainPredictions(mlp, options).Fit(Rows(ml, RandomRows(4, 3, 2), 3));
        var row = Read(explainer.Transform(Rows(ml, new[] { new[] { 20f, 50f, 30f } }, 3))).Single();
        Assert.Equal(new[] { 76.667, 196.667, 116.667 }, row.Attributions.Select(v => (double)v), new Tolerance(1e-3));
    }

    [Fact]
    public void DeepLiftShapReproducesCaptumsReluExample()
    {
        // captum test_deeplift_basic: f = 2·ReLU(x1) + 2·ReLU(x2 − 1.5), x = (1, 2), b = 0 → exactly [2, 1].
        var ml = new MLContext(seed: 1);
        var mlp = MlpWithWeights(ml, 2, new[] { 2 }, net =>
        {
            var fc = (TorchSharp.Modules.Linear)net.Body.children().First();
            fc.weight!.copy_(TorchSharp.torch.tensor(new float[] { 1, 0, 0, 1 }, 2, 2));
            fc.bias!.copy_(TorchSharp.torch.tensor(new float[] { 0, -1.5f }));
            net.Head.weight!.copy_(TorchSharp.torch.tensor(new float[] { 2, 2 }, 1, 2));
            net.Head.bias!.zero_();
        });
        var options = new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap, Baseline = BaselineKind.Zeros };
        var explainer = ml.Transforms.ExplainPredictions(mlp, options).Fit(Rows(ml, RandomRows(3, 2, 4), 2));
        var row = Read(explainer.Transform(Rows(ml, new[] { new[] { 1f, 2f } }, 2))).Single();
        Assert.Equal(2.0, row.Attributions[0], 5);
        Assert.Equal(1.0, row.Attributions[1], 5);
        Assert.Equal(0.0, row.Delta, 5);
    }

    [Fact]
    public void IntegratedGradientsAreExactOnALinearNetworkWithItsStandardizer()
    {
        // A linear MLP (no hidden layer) with its input standardizer: IG must equal f(b + eᵢ(xᵢ − bᵢ)) − f(b) for every i,
        // which holds only if the gradient is taken with respect to the raw column (through the standardizer).
        var ml = new MLContext(seed: 1);
        var rows = RandomRows(64, 4, 5);
        var data = ml.Data.LoadFromEnumerable(rows.Select(r => new LabelledRow { Features = r, Label = 3 * r[0] - r[2] + 0.5f * r[3] }).ToList(), Definition<LabelledRow>(4));
        var model = ml.Regression.Trainers.NeuralNetwork(new MLExtensions.Tabular.NeuralNetworkOptions { HiddenLayers = Array.Empty<int>(), Epochs = 3, Seed = 2 }).Fit(data);
        Assert.True(model.Model.Standardizes);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Steps = 7 }).Fit(data);
        var baseline = Enumerable.Range(0, 4).Select(j => rows.Average(r => r[j])).ToArray();
        var engine = ml.Model.CreatePredictionEngine<Row, ScoreRow>(model, inputSchemaDefinition: Definition<Row>(4));
        float F(float[] x) => engine.Predict(new Row { Features = x }).Score;
        var explained = Read(explainer.Transform(Rows(ml, rows.Take(3), 4)));
        for (int n = 0; n < 3; n++)
        {
            for (int j = 0; j < 4; j++)
            {
                var moved = (float[])baseline.Clone();
                moved[j] = rows[n][j];
                Assert.Equal(F(moved) - F(baseline), explained[n].Attributions[j], 3);
            }
            Assert.True(Math.Abs(explained[n].Delta) < 1e-4);
        }
    }

    [Theory]
    [InlineData(8, null)]
    [InlineData(10, null)]
    public void KernelShapWithEveryCoalitionEqualsBruteForceShapleyValues(int features, int? samples)
    {
        var ml = new MLContext(seed: 1);
        static float F(float[] x) => x[0] * x[1] + MathF.Max(x[2], x[3]) + MathF.Tanh(x[4] - x[5]) + x[^1] * x[^2] * 0.5f;
        var references = RandomRows(5, features, 7);
        var model = Function(ml, features, F);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, Samples = samples }).Fit(Rows(ml, references, features));
        var x = RandomRows(1, features, 8)[0];
        var row = Read(explainer.Transform(Rows(ml, new[] { x }, features))).Single();
        var exact = BruteForceShapley(F, x, references);
        Assert.Equal(exact, row.Attributions.Select(v => (double)v), new Tolerance(1e-4));
    }

    [Fact]
    public void SampledKernelShapApproachesBruteForceShapleyValues()
    {
        var ml = new MLContext(seed: 1);
        static float F(float[] x) => x[0] * x[1] + MathF.Max(x[2], x[3]) + MathF.Tanh(x[4] - x[5]) + x[9] * x[8] * 0.5f + x[6];
        var references = RandomRows(5, 10, 7);
        var model = Function(ml, 10, F);
        var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.KernelShap, Samples = 400, Seed = 3 }).Fit(Rows(ml, references, 10));
        var x = RandomRows(1, 10, 8)[0];
        var row = Read(explainer.Transform(Rows(ml, new[] { x }, 10))).Single();
        var exact = BruteForceShapley(F, x, references);
        double scale = exact.Max(Math.Abs);
        for (int j = 0; j < 10; j++)
            Assert.True(Math.Abs(exact[j] - row.Attributions[j]) <= 0.05 * scale, $"feature {j}: {row.Attributions[j]} vs exact {exact[j]}");
        Assert.True(Math.Abs(row.Delta) < 1e-3);
    }

    [Fact]
    public void DummyFeatureGetsZeroAndSymmetricFeaturesGetEqualValues()
    {
        var ml = new MLContext(seed: 1);
        // x0 and x1 play symmetric roles; x3 is ignored.
        static float F(float[] x) => x[0] * x[1] + x[2] * x[2];
        var references = new List<float[]> { new[] { 0f, 0f, 0f, 5f }, new[] { 1f, 1f, 0f, -3f } };
        var model = Function(ml, 4, F);
        var x = new[] { 2f, 2f, 1f, 7f };
        foreach (var method in new[] { ExplanationMethod.KernelShap })
        {
            var explainer = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = method }).Fit(Rows(ml, references, 4));
            var row = Read(explainer.Transform(Rows(ml, new[] { x }, 4))).Single();
            Assert.Equal(0, row.Attributions[3], 6);
            Assert.Equal(row.Attributions[0], row.Attributions[1], 6);
        }
    }
}
