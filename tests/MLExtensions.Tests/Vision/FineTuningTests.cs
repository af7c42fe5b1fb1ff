using Microsoft.ML;
using MLExtensions.Vision;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Vision;

/// <summary>Fine-tuning the ImageNet ResNet-18 of ML.NET's featurizer package: frozen parts really stay frozen.</summary>
public class FineTuningTests
{
    private static IDataView Data(MLContext ml, int count)
    {
        var rows = ml.Data.LoadFromEnumerable(SyntheticImages.Make(count, 9));
        return ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
    }

    private static ImageClassifierOptions Options(int headEpochs, int unfreeze) => new()
    {
        ImageColumnName = "Pixels",
        ImageChannels = 1,
        ImageHeight = SyntheticImages.Size,
        ImageWidth = SyntheticImages.Size,
        Architecture = ImageArchitecture.ResNet18,
        PretrainedWeights = PretrainedWeights.ResNet18ImageNet,
        InputSize = 64, // small enough for a quick test; the weights do not depend on the input size
        Epochs = 1,
        BatchSize = 16,
        FineTuning = { HeadOnlyEpochs = headEpochs, UnfreezeLastStages = unfreeze },
        Seed = 5,
    };

    private static Dictionary<string, float[]> Backbone(ImageClassifierTransformer model) =>
        model.Classifier.Network.state_dict().Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value.to(torch.float32).data<float>().ToArray());

    private static Dictionary<string, float[]> Pretrained()
    {
        var stateDict = ResNet18OnnxWeights.LoadStateDict();
        var result = stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.to(torch.float32).data<float>().ToArray());
        foreach (var t in stateDict.Values)
            t.Dispose();
        return result;
    }

    [Fact]
    public void HeadOnlyTrainingLeavesTheWholeBackboneAndItsBatchNormStatisticsUnchanged()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.RawMessage); };
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(Options(headEpochs: 3, unfreeze: 0)).Fit(Data(ml, 60));

        var pretrained = Pretrained();
        var backbone = Backbone(model);
        Assert.Equal(pretrained.Keys.Order(), backbone.Keys.Order());
        foreach (var (key, values) in pretrained)
            Assert.True(values.SequenceEqual(backbone[key]), $"{key} changed");
        Assert.Contains(messages, m => m.StartsWith("Cached frozen backbone features of ", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("Loaded ImageNet ResNet-18 weights from ", StringComparison.Ordinal));
        // The learning rate was left at the from-scratch default, so the phase runs at the fine-tuning one.
        Assert.Contains("Fine-tuning phase 'head' at learning rate 0.001 (the default for pretrained weights; set Optimizer.LearningRate to another value than 0.003 to choose).", messages);
    }

    [Fact]
    public void UnfreezingTheLastStageTrainsOnlyThatStage()
    {
        var ml = new MLContext(seed: 2);
        var model = ml.MulticlassClassification.Trainers.ImageClassifier(Options(headEpochs: 1, unfreeze: 1)).Fit(Data(ml, 48));

        var pretrained = Pretrained();
        var backbone = Backbone(model);
        var changed = pretrained.Keys.Where(k => !pretrained[k].SequenceEqual(backbone[k])).ToList();
        Assert.NotEmpty(changed);
        Assert.All(changed, k => Assert.StartsWith("layer4.", k));
        // The unfrozen stage's batch-norm statistics and weights both moved.
        Assert.Contains("layer4.2.bn2.running_mean", changed);
        Assert.Contains("layer4.0.conv1.weight", changed);
    }
}
