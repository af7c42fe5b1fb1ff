using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tests.Text;
using MLExtensions.Tests.Vision;
using MLExtensions.Vision;
using Xunit;
using static MLExtensions.Tests.Explainability.ExplanationTestModels;

namespace MLExtensions.Tests.Explainability;

/// <summary>DeepLIFT-SHAP on the networks whose nonlinearities sit inside blocks: ResNets (exact) and the BERT text classifier (approximate).</summary>
public class ExplanationDeepLiftTests
{
    [Theory]
    [InlineData(ImageArchitecture.ResNet20, true)]   // 3×3 stem, BasicBlocks with projected shortcuts
    [InlineData(ImageArchitecture.ResNet18, false)]  // ImageNet stem: ReLU then overlapping 3×3/2 max pooling with padding
    [InlineData(ImageArchitecture.ResNet50, false)]  // Bottleneck blocks
    public void DeepLiftShapIsCompleteOnAResNet(ImageArchitecture architecture, bool smallStem)
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(SyntheticImages.Make(48, 1));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = SyntheticImages.Size, ImageWidth = SyntheticImages.Size,
            Architecture = architecture, Network = new ImageNetworkSettings { SmallInputStem = smallStem }, Epochs = 1, BatchSize = 16, Seed = 3,
        }).Fit(data);
        var sample = model.Transform(ml.Data.TakeRows(ml.Data.SkipRows(data, 40), 3));
        var explained = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap, BackgroundRows = 4 }).Fit(data).Transform(sample);
        // ReLU, batch normalisation in evaluation mode, residual additions, max and average pooling: the rescale rule is
        // exact, so Σ attributions = p(x) − mean p(references) up to float32 rounding of the multipliers Δy/Δx.
        var probabilities = explained.GetColumn<float[]>("Score").ToArray();
        var classes = explained.GetColumn<uint>(ExplanationTransformer.ExplainedClassColumn).ToArray();
        var result = Read(explained);
        for (int i = 0; i < result.Count; i++)
        {
            double change = probabilities[i][classes[i] - 1] - result[i].BaseValue;
            Assert.True(Math.Abs(result[i].Delta) <= 1e-3 * Math.Abs(change) + 1e-5, $"{architecture} row {i}: delta {result[i].Delta}, f(x) − base {change}");
            Assert.Equal(change, result[i].Attributions.Sum(a => (double)a), 3);
        }
    }

    [Fact]
    public void DeepLiftShapOnTheTextClassifierIsNearlyCompleteAndRanksTokensLikeIntegratedGradients()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TinyText.Make(200, 1));
        // Trained from scratch at a from-scratch learning rate (the default 5e-5 is for fine-tuning), so that the
        // sentiment words really move the output.
        var options = TinyText.ScratchClassifier(hidden: 32, maxPositions: 64, maxLength: 32, epochs: 4);
        options.Optimizer.LearningRate = 2e-3;
        var model = ml.BinaryClassification.Trainers.TextClassifier(options).Fit(data);
        var sample = ml.Data.LoadFromEnumerable(new[]
        {
            new TinyText.Row { Text = "the coffee was great" }, new TinyText.Row { Text = "very stale cookies and tea" },
            new TinyText.Row { Text = "a bit bland box" }, new TinyText.Row { Text = "lovely tea really" },
        });
        var deep = ml.Transforms.ExplainPredictions(model, new ExplanationOptions { Method = ExplanationMethod.DeepLiftShap }).Fit(data).Transform(model.Transform(sample));
        var ig = Read(ml.Transforms.ExplainPredictions(model, new ExplanationOptions()).Fit(data).Transform(sample));
        var scores = deep.GetColumn<float>("Score").ToArray();
        var rows = Read(deep);
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(ig[i].Attributions.Length, rows[i].Attributions.Length);
        // The rescale rule covers GELU and the attention softmax; Q·Kᵀ, attention·V and LayerNorm pass plain gradients
        // (as in shap), so completeness is approximate. Measured over 4 trainings of this model (training is not
        // bit-reproducible here): Σ|delta| / Σ|f(x) − base| over the 4 rows from 0.007 to 0.085 (integrated gradients:
        // below 1e-5). Per row the ratio is noisier (up to 1.5 in 8 trainings, on a row whose f(x) − base is near 0), hence pooled.
        double pooled = rows.Sum(r => Math.Abs((double)r.Delta)) / rows.Select((r, i) => Math.Abs(scores[i] - (double)r.BaseValue)).Sum();
        Assert.True(pooled <= 0.25, $"Σ|delta| / Σ|f(x) − base| = {pooled}");
        Assert.All(rows, r => Assert.False(float.IsNaN(r.Delta)));
        // Rank correlation over the word pieces of all rows (per row there are only 5-7, too few to rank stably).
        // Measured over 9 trainings: 0.85 to 0.99.
        double rho = SpearmanCorrelation(rows.SelectMany(r => r.Attributions).Select(v => (double)v).ToArray(), ig.SelectMany(r => r.Attributions).Select(v => (double)v).ToArray());
        Assert.True(rho >= 0.75, $"rank correlation with integrated gradients {rho}");
    }

    [Fact]
    public void WhileExplainingTheAttentionSoftmaxRunsAsAHookableModuleEvenWhereScoringWouldUseTheFusedKernel()
    {
        // Evaluation passes of several rows use libtorch's fused attention, which has no softmax module: DeepLIFT's rule
        // for the softmax would silently not apply. Activating the rule must switch this thread to the explicit form.
        using var encoder = new MLExtensions.Text.BertEncoder(MLExtensions.Text.BertConfig.Small(vocabSize: 50, layers: 1, hidden: 16, heads: 2, maxPositions: 16));
        encoder.eval();
        int softmaxCalls = 0;
        foreach (var (_, module) in encoder.named_modules())
        {
            if (module is TorchSharp.Modules.Softmax softmax)
                softmax.register_forward_hook((_, _, output) => { softmaxCalls++; return output; });
        }
        using var ids = TorchSharp.torch.tensor(new long[] { 2, 7, 9, 3, 2, 11, 4, 3 }).reshape(2, 4);
        using var mask = TorchSharp.torch.ones(2, 4, dtype: TorchSharp.torch.@bool);
        using var types = TorchSharp.torch.zeros(2, 4, dtype: TorchSharp.torch.int64);
        var input = new MLExtensions.Text.EncoderInput(ids, mask, types);
        using var rescale = DeepLiftRescale.Attach(encoder);
        // The fused kernel is off by default (batch and single-row scoring must agree bit for bit); turn it on as a user of the
        // internal switch would. Test classes do not run in parallel here (xunit.runner.json), so no other test sees it.
        bool fusedBefore = MLExtensions.Text.BertEncoder.FusedAttention;
        MLExtensions.Text.BertEncoder.FusedAttention = true;
        try
        {
            using (TorchSharp.torch.no_grad())
                encoder.call(input).Dispose();
            Assert.Equal(0, softmaxCalls); // scoring: the fused kernel

            using (rescale.Activate())
            using (TorchSharp.torch.no_grad())
                encoder.call(input).Dispose();
            Assert.Equal(1, softmaxCalls); // explaining: the explicit form, one softmax per layer

            using (TorchSharp.torch.no_grad())
                encoder.call(input).Dispose();
            Assert.Equal(1, softmaxCalls); // and back to the fused kernel once the rule is off
        }
        finally
        {
            MLExtensions.Text.BertEncoder.FusedAttention = fusedBefore;
        }
    }
}
