using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Sweeps;

/// <summary>What ML.NET AutoML (and our sweep) needs from our trainers: parameterless options, cancellation per batch, no growth over many fits.</summary>
public class TrainerContractTests
{
    [Fact]
    public void EveryOptionsClassHasAPublicParameterlessConstructor()
    {
        var optionTypes = typeof(NetworkTrainerOptions).Assembly.GetExportedTypes()
            .Where(t => !t.IsAbstract && (typeof(NetworkTrainerOptions).IsAssignableFrom(t) || t.Name.EndsWith("Options", StringComparison.Ordinal)) && t.IsClass)
            .ToList();
        Assert.Contains(typeof(NeuralNetworkOptions), optionTypes);
        Assert.Contains(optionTypes, t => t.Name == "ImageClassifierOptions");
        Assert.Contains(optionTypes, t => t.Name == "TextClassifierOptions");
        foreach (var type in optionTypes)
            Assert.True(type.GetConstructor(Type.EmptyTypes) is not null, $"{type.FullName} has no public parameterless constructor");
        foreach (var type in optionTypes.Where(typeof(NetworkTrainerOptions).IsAssignableFrom))
            ((NetworkTrainerOptions)Activator.CreateInstance(type)!).Validate(); // the defaults are valid
    }

    private sealed class CancelAtBatch : ITrainingCallback
    {
        private readonly MLContext _ml;
        private readonly int _batch;

        public CancelAtBatch(MLContext ml, int batch)
        {
            _ml = ml;
            _batch = batch;
        }

        public int Batches;

        public void OnBatchEnd(TrainingRun run, BatchResult batch)
        {
            if (++Batches == _batch)
                MLContextCancellation.Cancel(_ml);
        }
    }

    [Fact]
    public void MLContextCancellationStopsTrainingWithinOneBatch()
    {
        var ml = new MLContext(1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(TabularData.LoadWine(ml)).Transform(TabularData.LoadWine(ml));
        var cancel = new CancelAtBatch(ml, 3);
        var options = new NeuralNetworkOptions { Epochs = 50, BatchSize = 8, Seed = 1 };
        options.Callbacks.Add(cancel);

        Assert.ThrowsAny<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.NeuralNetwork(options).Fit(data));
        Assert.Equal(3, cancel.Batches); // wine has 20 batches of 8 per epoch: the fourth never ran
    }

    private sealed class WideRow
    {
        [VectorType(64)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    [Fact]
    public void FittingManyNetworksOneAfterAnotherDoesNotGrowMemory()
    {
        // 16,000 rows × 64 features: each fit reads ~4 MiB of features into tensors. A fit that leaked its data,
        // network or optimizer state would add ≥ 4 MiB per fit, ≥ 80 MiB over the 20 measured fits; the bound leaves
        // room for allocator noise (glibc arenas, TorchSharp's caches) but not for a leak of that size.
        var ml = new MLContext(1);
        var random = new Random(1);
        var rows = Enumerable.Range(0, 16_000).Select(_ =>
        {
            var f = Enumerable.Range(0, 64).Select(_ => (float)random.NextDouble()).ToArray();
            return new WideRow { Features = f, Label = f[0] + f[1] > 1 ? 1 : 0 };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);

        (long Managed, long Resident) Measure()
        {
            for (int i = 0; i < 2; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            using var process = Process.GetCurrentProcess();
            return (GC.GetTotalMemory(forceFullCollection: true), process.WorkingSet64);
        }

        void Fit()
        {
            var options = new NeuralNetworkOptions { HiddenLayers = new[] { 32 }, Epochs = 1, BatchSize = 512, ValidationFraction = 0.1, Seed = 1 };
            var model = ml.Regression.Trainers.NeuralNetwork(options).Fit(data);
            Assert.NotNull(model);
        }

        for (int i = 0; i < 10; i++)
            Fit();
        var before = Measure();
        for (int i = 0; i < 20; i++)
            Fit();
        var after = Measure();

        long managedGrowth = after.Managed - before.Managed;
        long residentGrowth = after.Resident - before.Resident;
        Assert.True(managedGrowth < 16L << 20, $"managed memory grew by {managedGrowth >> 20} MiB over 20 fits");
        Assert.True(residentGrowth < 48L << 20, $"resident memory grew by {residentGrowth >> 20} MiB over 20 fits (managed {managedGrowth >> 20} MiB)");
    }
}
