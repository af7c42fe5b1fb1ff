using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Core;

/// <summary>The shared training loop, exercised through the small tabular trainer (a fast "boring model").</summary>
public class TrainingLoopTests
{
    private static NeuralNetworkOptions Options(int epochs = 6) => new()
    {
        HiddenLayers = new[] { 16, 16 },
        Dropout = 0.3,             // exercises the run's generator
        BatchNormalization = true, // exercises buffers in checkpoints
        Epochs = epochs,
        ValidationFraction = 0.2,
        Seed = 11,
    };

    private static IDataView Keyed(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));

    private static Dictionary<string, float[]> Weights(NeuralNetworkTransformer model) =>
        model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(torch.float32).data<float>().ToArray());

    [Fact]
    public void SameSeedGivesIdenticalWeightsAndDifferentSeedDoesNot()
    {
        var ml = new MLContext();
        var data = Keyed(ml);
        var a = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(Options()).Fit(data));
        var b = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(Options()).Fit(data));
        var other = Options();
        other.Seed = 12;
        var c = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(other).Fit(data));

        Assert.Equal(a.Keys, b.Keys);
        foreach (var key in a.Keys)
            Assert.Equal(a[key], b[key]);
        Assert.NotEqual(a["head.weight"], c["head.weight"]);
    }

    [Fact]
    public void ResumingFromACheckpointGivesTheSameFinalWeights()
    {
        var ml = new MLContext();
        var data = Keyed(ml);
        using var uninterrupted = new TempDirectory();
        using var interrupted = new TempDirectory();

        var reference = Options();
        reference.Checkpoint.Directory = uninterrupted.Path;
        var expected = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(reference).Fit(data));

        // Cancel right after the checkpoint of epoch 3 is written.
        using var cancel = new CancellationTokenSource();
        var first = Options();
        first.Checkpoint.Directory = interrupted.Path;
        first.CancellationToken = cancel.Token;
        first.Progress = new SynchronousProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.EpochEnd && p.Epoch == 3)
                cancel.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(first).Fit(data));
        Assert.True(File.Exists(Path.Combine(interrupted.Path, "checkpoint.mlxckpt")));
        Assert.Empty(Directory.GetFiles(interrupted.Path, "*.tmp"));

        var resumed = Options();
        resumed.Checkpoint.Directory = interrupted.Path;
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(resumed);
        var actual = Weights(trainer.Fit(data));

        Assert.Equal(6, trainer.LastTrainingState!.EpochsCompleted);
        Assert.Equal(6, trainer.LastTrainingState.History.Count);
        foreach (var key in expected.Keys)
            Assert.Equal(expected[key], actual[key]);
    }

    [Fact]
    public void CheckpointFromAnotherArchitectureIsRefused()
    {
        var ml = new MLContext();
        var data = Keyed(ml);
        using var folder = new TempDirectory();
        var small = Options(epochs: 1);
        small.Checkpoint.Directory = folder.Path;
        ml.MulticlassClassification.Trainers.NeuralNetwork(small).Fit(data);

        var wide = Options(epochs: 1);
        wide.HiddenLayers = new[] { 32 };
        wide.Checkpoint.Directory = folder.Path;
        var e = Assert.Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(wide).Fit(data));
        Assert.Contains("was written by a different run", e.Message);
    }

    [Fact]
    public void CancellationBeforeTrainingStopsImmediately()
    {
        var ml = new MLContext();
        var options = Options();
        options.CancellationToken = new CancellationToken(canceled: true);
        Assert.ThrowsAny<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(Keyed(ml)));
    }

    [Fact]
    public void ReportsProgressThroughIProgressAndTheMLContextLog()
    {
        var ml = new MLContext();
        var log = new List<LoggingEventArgs>();
        ml.Log += (_, e) => { lock (log) log.Add(e); };
        var progress = new SynchronousProgress<TrainingProgress>(_ => { });
        var options = Options(epochs: 3);
        options.ProgressInterval = 1;
        options.Progress = progress;

        ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(Keyed(ml));

        var epochEnds = progress.Reports.Where(r => r.Phase == TrainingPhase.EpochEnd).ToList();
        Assert.Equal(new[] { 1, 2, 3 }, epochEnds.Select(r => r.Epoch));
        Assert.All(epochEnds, r =>
        {
            Assert.Equal("Accuracy", r.MetricName);
            Assert.NotNull(r.ValidationMetric);
            Assert.True(r.SamplesPerSecond > 0);
            Assert.True(r.TrainingLoss > 0);
        });
        Assert.Contains(progress.Reports, r => r.Phase == TrainingPhase.Batch);
        Assert.Equal(TrainingPhase.Completed, progress.Reports[^1].Phase);
        var messages = log.Where(e => e.Source == "NeuralNetworkTrainer; Training" && e.Kind == ChannelMessageKind.Info).Select(e => e.RawMessage).ToList();
        Assert.Contains(messages, m => m.StartsWith("Epoch 1/3: training loss ", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("Training finished after 3 epochs", StringComparison.Ordinal));
    }

    [Fact]
    public void EarlyStoppingStopsAndRestoresTheBestEpoch()
    {
        var ml = new MLContext();
        var options = Options(epochs: 200);
        options.EarlyStopping.Patience = 3;
        options.Optimizer.LearningRate = 0.05; // large steps make the validation loss bounce, so it stops early
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
        var model = trainer.Fit(Keyed(ml));

        var state = trainer.LastTrainingState!;
        Assert.Equal(StopReason.EarlyStopping, state.StopReason);
        Assert.True(state.EpochsCompleted < 200);
        Assert.Equal(state.EpochsCompleted - 3, state.BestEpoch);
        var best = state.History.MinBy(h => h.ValidationLoss!.Value)!;
        Assert.Equal(best.Epoch, state.BestEpoch);
        Assert.NotNull(model);
    }

    [Fact]
    public void MonitoringTheMetricKeepsTheMostAccurateEpoch()
    {
        var ml = new MLContext();
        var options = Options(epochs: 15);
        options.EarlyStopping.Enabled = false;
        options.EarlyStopping.Monitor = EarlyStoppingMonitor.ValidationMetric;
        var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
        trainer.Fit(Keyed(ml));

        var history = trainer.LastTrainingState!.History;
        double best = history.Max(h => h.ValidationMetric!.Value);
        Assert.Equal(history.First(h => h.ValidationMetric == best).Epoch, trainer.LastTrainingState.BestEpoch);
        Assert.Equal(15, history.Count);
    }

    [Fact]
    public void StreamingAndInMemoryDataBothTrain()
    {
        var ml = new MLContext();
        // LoadFromEnumerable cannot shuffle itself, so streaming goes through ML.NET's pool shuffler.
        var rows = ml.Data.CreateEnumerable<Tabular.WineRow>(TabularData.LoadWine(ml), false).ToList();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        foreach (var caching in new[] { DataCaching.Streaming, DataCaching.Memory })
        {
            var options = Options(epochs: 40);
            options.DataCaching = caching;
            options.Dropout = 0;
            var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
            var model = trainer.Fit(data);
            double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(data)).MicroAccuracy;
            Assert.True(accuracy > 0.9, $"{caching}: accuracy {accuracy}");
        }
    }

    [Fact]
    public void GradientAccumulationMatchesOneLargeBatch()
    {
        // 32 rows, no validation: batches of 16 vs. batches of 4 accumulated 4 times give 2 optimizer steps each
        // over the same rows, so the weights must agree up to float rounding.
        var ml = new MLContext();
        var rows = ml.Data.CreateEnumerable<Tabular.WineRow>(TabularData.LoadWine(ml), false).Where((_, i) => i % 5 == 0).Take(32).ToList();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        NeuralNetworkOptions Make(int batch, int accumulate)
        {
            var o = Options(epochs: 1);
            o.Dropout = 0;
            o.BatchNormalization = false; // batch statistics differ between batch sizes by design
            o.ValidationFraction = 0;
            o.BatchSize = batch;
            o.GradientAccumulationSteps = accumulate;
            o.Optimizer.Kind = OptimizerKind.Sgd;
            o.Optimizer.LearningRate = 0.1;
            return o;
        }
        var large = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(Make(16, 1)).Fit(data));
        var accumulated = Weights(ml.MulticlassClassification.Trainers.NeuralNetwork(Make(4, 4)).Fit(data));
        foreach (var key in large.Keys)
        {
            for (int i = 0; i < large[key].Length; i++)
                Assert.True(Math.Abs(large[key][i] - accumulated[key][i]) < 1e-6, $"{key}[{i}]: {large[key][i]} vs {accumulated[key][i]}");
        }
    }
}
