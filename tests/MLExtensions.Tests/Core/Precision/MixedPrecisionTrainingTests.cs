using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using MLExtensions.Tests.Onnx;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Core.Precision;

/// <summary>bfloat16 training through the real trainers: accuracy, master weights, the low-precision path, persistence and resume.</summary>
public class MixedPrecisionTrainingTests
{
    public MixedPrecisionTrainingTests() => TorchNativeLoader.EnsureLoaded();

    private static NeuralNetworkOptions MlpOptions(TrainingPrecision precision, int epochs = 12) => new()
    {
        HiddenLayers = new[] { 32, 16 }, BatchNormalization = true, Dropout = 0.1, Epochs = epochs, BatchSize = 16,
        ValidationFraction = 0, Seed = 5, Precision = precision,
    };

    private static (IDataView Train, IDataView Test) Split(MLContext ml, IDataView data)
    {
        var split = ml.Data.TrainTestSplit(data, testFraction: 0.3, seed: 1);
        return (split.TrainSet, split.TestSet);
    }

    [Fact]
    public void BFloat16MlpMatchesFloat32AccuracyOnBreastCancerAndKeepsFloat32Weights()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = Split(ml, TabularData.LoadBreastCancer(ml));
        double Accuracy(TrainingPrecision p, out NeuralNetworkTransformer model)
        {
            var trainer = ml.BinaryClassification.Trainers.NeuralNetwork(MlpOptions(p));
            var fitted = trainer.Fit(train);
            model = fitted;
            Assert.Equal(p, trainer.LastTrainingState!.Precision);
            return ml.BinaryClassification.Evaluate(fitted.Transform(test)).Accuracy;
        }
        double float32 = Accuracy(TrainingPrecision.Float32, out _);
        double bf16 = Accuracy(TrainingPrecision.BFloat16, out var bf16Model);

        Assert.True(float32 > 0.9, $"float32 accuracy {float32}");
        Assert.True(Math.Abs(bf16 - float32) <= 0.03, $"bfloat16 accuracy {bf16} vs float32 {float32}");
        Assert.All(bf16Model.Network.parameters(), p => Assert.Equal(float32Type, p.dtype));
        Assert.All(bf16Model.Network.buffers().Where(b => b.is_floating_point()), b => Assert.Equal(float32Type, b.dtype));
    }

    private static readonly ScalarType float32Type = ScalarType.Float32;

    [Fact]
    public void TrainingForwardRunsTheLinearLayersInBFloat16()
    {
        // Inside each training forward, the head Linear's output must equal the product of its input and weights computed
        // independently in bfloat16 — and differ from the float32 product. The input is captured after the hidden layers.
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var probe = new LinearProbe();
        var options = MlpOptions(TrainingPrecision.BFloat16, epochs: 1);
        options.Callbacks.Add(probe);
        ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(data);

        Assert.True(probe.Forwards > 5, $"{probe.Forwards} forwards seen");
        Assert.Equal(0, probe.MismatchesWithBFloat16);
        Assert.Equal(probe.Forwards, probe.DifferentFromFloat32);
        Assert.All(probe.ScopesSeen, s => Assert.Equal(ScalarType.BFloat16, s));
        Assert.All(probe.OutputTypes, t => Assert.Equal(ScalarType.BFloat16, t));
    }

    private sealed class LinearProbe : ITrainingCallback
    {
        private Tensor? _headInput;

        public int Forwards { get; private set; }

        public int MismatchesWithBFloat16 { get; private set; }

        public int DifferentFromFloat32 { get; private set; }

        public List<ScalarType?> ScopesSeen { get; } = new();

        public List<ScalarType> OutputTypes { get; } = new();

        public void OnTrainBegin(TrainingRun run)
        {
            var mlp = (MultiLayerPerceptron)run.Task.Network;
            mlp.Body.register_forward_hook((_, _, output) => { _headInput = output.detach().clone(); return null; });
            mlp.Head.register_forward_hook((module, _, output) =>
            {
                if (!mlp.training)
                    return null;
                var head = (TorchSharp.Modules.Linear)module;
                ScopesSeen.Add(Autocast.Current);
                using var noGrad = torch.no_grad();
                // The hidden layers hand the head a bfloat16 activation (autocast keeps products in bfloat16 between layers).
                OutputTypes.Add(output.dtype);
                var bf16 = nn.functional.linear(_headInput!.to(bfloat16), head.weight!.to(bfloat16), head.bias!.to(bfloat16));
                var f32 = nn.functional.linear(_headInput!.to(float32), head.weight!, head.bias!);
                Forwards++;
                if (!output.detach().eq(bf16).all().item<bool>())
                    MismatchesWithBFloat16++;
                if (!output.detach().to(float32).eq(f32).all().item<bool>())
                    DifferentFromFloat32++;
                return null;
            });
        }
    }

    [Fact]
    public void BFloat16DefaultCnnMatchesFloat32AccuracyOnFashionMnist()
    {
        var ml = new MLContext(seed: 2);
        var view = ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(400));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view);
        var train = keys.Transform(view);
        var test = keys.Transform(ml.Data.LoadFromEnumerable(OnnxTestData.Fashion(200, test: true)));
        double Accuracy(TrainingPrecision precision)
        {
            var options = new ImageClassifierOptions
            {
                ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = 28, ImageWidth = 28,
                Epochs = 3, BatchSize = 32, Seed = 2, ValidationFraction = 0, Precision = precision,
            };
            var model = ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(train);
            Assert.All(model.Network.parameters(), p => Assert.Equal(float32Type, p.dtype));
            return ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        }
        double float32 = Accuracy(TrainingPrecision.Float32);
        double bf16 = Accuracy(TrainingPrecision.BFloat16);
        Assert.True(float32 > 0.6, $"float32 accuracy {float32}");
        Assert.True(Math.Abs(bf16 - float32) <= 0.05, $"bfloat16 accuracy {bf16} vs float32 {float32}");
    }

    [Fact]
    public void SavedBFloat16ModelScoresIdenticallyAfterLoading()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var model = ml.MulticlassClassification.Trainers.NeuralNetwork(MlpOptions(TrainingPrecision.BFloat16, epochs: 5)).Fit(data);
        var before = model.Transform(data).GetColumn<float[]>("Score").ToArray();
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "model.zip");
        ml.Model.Save(model, data.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var after = loaded.Transform(data).GetColumn<float[]>("Score").ToArray();
        Assert.Equal(before.Length, after.Length);
        for (int i = 0; i < before.Length; i++)
            Assert.Equal(before[i], after[i]);
    }

    [Theory]
    [InlineData(TrainingPrecision.BFloat16)]
    [InlineData(TrainingPrecision.Float16)]
    public void ResumingAMixedPrecisionRunGivesTheSameFinalWeightsAndLossScale(TrainingPrecision precision)
    {
        var ml = new MLContext();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        NeuralNetworkOptions Options(string folder)
        {
            var o = MlpOptions(precision, epochs: 4);
            o.ValidationFraction = 0.2;
            o.Checkpoint.Directory = folder;
            // For float16: a scale that overflows at first, so skipped steps and a changed scale must survive the resume.
            o.LossScaling.InitialScale = Math.Pow(2, 30);
            o.LossScaling.GrowthInterval = 7;
            return o;
        }
        using var uninterrupted = new TempDirectory();
        using var interrupted = new TempDirectory();
        var referenceTrainer = ml.MulticlassClassification.Trainers.NeuralNetwork(Options(uninterrupted.Path));
        var expected = referenceTrainer.Fit(data).Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(float32).data<float>().ToArray());

        using var cancel = new CancellationTokenSource();
        var first = Options(interrupted.Path);
        first.CancellationToken = cancel.Token;
        first.Progress = new SynchronousProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.EpochEnd && p.Epoch == 2)
                cancel.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(first).Fit(data));

        var resumedTrainer = ml.MulticlassClassification.Trainers.NeuralNetwork(Options(interrupted.Path));
        var actual = resumedTrainer.Fit(data).Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(float32).data<float>().ToArray());
        foreach (var key in expected.Keys)
            Assert.Equal(expected[key], actual[key]);
        var a = referenceTrainer.LastTrainingState!;
        var b = resumedTrainer.LastTrainingState!;
        Assert.Equal(a.LossScale, b.LossScale);
        Assert.Equal(a.SkippedSteps, b.SkippedSteps);
        if (precision == TrainingPrecision.Float16)
            Assert.True(a.SkippedSteps > 0, "the scripted scale should have overflowed at first");

        var other = Options(interrupted.Path);
        other.Precision = TrainingPrecision.Float32;
        other.Epochs = 6;
        var e = Assert.Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(other).Fit(data));
        Assert.Contains($"trained in precision {precision}", e.Message);
    }
}
