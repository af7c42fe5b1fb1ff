using Microsoft.ML;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Tabular;
using Xunit;

namespace MLExtensions.Tests.Core;

/// <summary>ML.NET's PredictionEngine.Dispose disposes the model it was made from; what that means for our transformers.</summary>
public class TransformerDisposalTests
{
    [Fact]
    public void DisposingAnEngineEndsTheModelWithAClearErrorAndDisposeIsIdempotent()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadWine(ml);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { Epochs = 2 })).Fit(data);
        var row = ml.Data.CreateEnumerable<WineRow>(data, reuseRowObject: false).First();
        var kept = ml.Model.CreatePredictionEngine<WineRow, ScoreRow>(model);
        Assert.Equal(3, kept.Predict(row).Score.Length);

        using (ml.Model.CreatePredictionEngine<WineRow, ScoreRow>(model))
        {
        }

        var error = Assert.Throws<ObjectDisposedException>(() => kept.Predict(row));
        Assert.Contains("This NeuralNetworkTransformer has been disposed, so its network's memory is gone. Note that disposing a PredictionEngine " +
                        "disposes the model it was created from (ML.NET's behaviour)", error.Message);
        model.Dispose();   // a second dispose does nothing
        Assert.Throws<ObjectDisposedException>(() => kept.Predict(row));
    }

    public sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }
}
