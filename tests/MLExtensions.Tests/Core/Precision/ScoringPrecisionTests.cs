using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Core.Precision;

/// <summary>bfloat16 scoring of a fitted transformer: close to float32, really different from it, saved with the model.</summary>
public class ScoringPrecisionTests
{
    [Fact]
    public void BFloat16ScoringStaysWithinBFloat16ToleranceAndIsSavedWithTheModel()
    {
        // ScoringPrecision does not change training, so two trainers with the same seed give the same weights: the
        // float32-scoring model is the oracle for the bfloat16-scoring one.
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        NeuralNetworkTransformer Fit(ScoringPrecision precision) => ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 64, 32 }, Epochs = 5, ValidationFraction = 0, Seed = 4, ScoringPrecision = precision,
        }).Fit(data);
        var float32Model = Fit(ScoringPrecision.Float32);
        var bf16Model = Fit(ScoringPrecision.BFloat16);
        Assert.Equal(ScoringPrecision.BFloat16, bf16Model.ScoringPrecision);

        var expected = float32Model.Transform(data).GetColumn<float[]>("Score").ToArray();
        var actual = bf16Model.Transform(data).GetColumn<float[]>("Score").ToArray();
        var differences = expected.Zip(actual).SelectMany(p => p.First.Zip(p.Second, (e, a) => Math.Abs(e - a))).ToArray();
        Assert.True(differences.Max() < 0.03, $"largest probability difference {differences.Max()}");
        Assert.True(differences.Max() > 0, "bfloat16 scoring gave exactly the float32 scores: the low-precision path was not taken");
        double agreement = expected.Zip(actual).Count(p => ArgMax(p.First) == ArgMax(p.Second)) / (double)expected.Length;
        Assert.True(agreement >= 0.98, $"predicted classes agree on {agreement:P1} of the rows");

        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "model.zip");
        ml.Model.Save(bf16Model, data.Schema, path);
        var loaded = (NeuralNetworkTransformer)new MLContext().Model.Load(path, out _);
        Assert.Equal(ScoringPrecision.BFloat16, loaded.ScoringPrecision);
        var reloaded = loaded.Transform(data).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < actual.Length; i++)
            Assert.Equal(actual[i], reloaded[i]);
    }

    private static int ArgMax(float[] v) => Array.IndexOf(v, v.Max());
}
