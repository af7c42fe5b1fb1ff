using Microsoft.ML;
using MLExtensions.Sweeps;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>
/// The per-epoch values the sweep reads from the training loop are the sweep metric itself where the docs say so: with
/// the trainer validating on the sweep's own validation data, the value at the kept epoch equals ML.NET's evaluator.
/// </summary>
public class IntermediateMetricMappingTests
{
    private static SweepTrial OneTrial(MLContext ml, IDataView train, IDataView validation, SweepTask task, SweepMetric metric, Func<NeuralNetworkOptions, IEstimator<ITransformer>> trainer)
    {
        var space = new SearchSpace().Add("lr", SearchRange.Choice(3e-3));
        var result = ml.Sweep(space, p => trainer(new NeuralNetworkOptions
        {
            HiddenLayers = new[] { 16 },
            Epochs = 6,
            Seed = 2,
            ValidationData = validation, // the loop validates on exactly the rows the sweep scores
            Optimizer = { LearningRate = p.Get<double>("lr") },
        }), new SweepOptions { Task = task, Metric = metric, MaxTrials = 1, Pruner = SweepPruner.None, RefitBestModel = false }).Run(train, validation);
        return result.Trials.Single();
    }

    private static DataOperationsCatalog.TrainTestData KeyedWineSplit(MLContext ml)
    {
        var wine = TabularData.LoadWine(ml);
        return ml.Data.TrainTestSplit(ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine), 0.3, seed: 3);
    }

    [Fact]
    public void MulticlassLogLossIsTheLoopsValidationLoss()
    {
        var ml = new MLContext(1);
        var split = KeyedWineSplit(ml);
        var trial = OneTrial(ml, split.TrainSet, split.TestSet, SweepTask.MulticlassClassification, SweepMetric.LogLoss, o => ml.MulticlassClassification.Trainers.NeuralNetwork(o));

        Assert.Equal("LogLoss", trial.IntermediateMetricName);
        Assert.False(trial.IntermediateHigherIsBetter);
        // Early stopping keeps the epoch with the lowest validation loss.
        Assert.Equal(trial.Metric, trial.IntermediateMetrics.Min(), 4);
    }

    [Fact]
    public void BinaryLogLossIsTheLoopsValidationLossInBits()
    {
        var ml = new MLContext(1);
        var split = ml.Data.TrainTestSplit(SweepIntegrationTests.LoadBinaryBreastCancer(ml), 0.3, seed: 3);
        var trial = OneTrial(ml, split.TrainSet, split.TestSet, SweepTask.BinaryClassification, SweepMetric.LogLoss, o => ml.BinaryClassification.Trainers.NeuralNetwork(o));

        Assert.Equal("LogLoss", trial.IntermediateMetricName);
        Assert.Equal(trial.Metric, trial.IntermediateMetrics.Min(), 4);
    }

    [Fact]
    public void MicroAccuracyIsTheLoopsAccuracyAndOtherMetricsUseTheLoopsMetricAsAStandIn()
    {
        var ml = new MLContext(1);
        var split = KeyedWineSplit(ml);
        var micro = OneTrial(ml, split.TrainSet, split.TestSet, SweepTask.MulticlassClassification, SweepMetric.MicroAccuracy, o => ml.MulticlassClassification.Trainers.NeuralNetwork(o));
        Assert.Equal("MicroAccuracy", micro.IntermediateMetricName);
        Assert.Contains(micro.Metric, micro.IntermediateMetrics); // the kept epoch's accuracy

        var macro = OneTrial(ml, split.TrainSet, split.TestSet, SweepTask.MulticlassClassification, SweepMetric.MacroAccuracy, o => ml.MulticlassClassification.Trainers.NeuralNetwork(o));
        Assert.Equal("Accuracy", macro.IntermediateMetricName); // the loop's micro accuracy stands in
        Assert.Equal(micro.IntermediateMetrics, macro.IntermediateMetrics);
    }
}
