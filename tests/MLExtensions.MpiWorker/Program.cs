using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions;
using MLExtensions.Core;
using MLExtensions.Tabular;

// Usage: MLExtensions.MpiWorker <wine.csv> <output folder> [key=value ...]
//   dp=1|0            DataParallel on (default 1)         batch=N           BatchSize per rank (default 10)
//   epochs=N          (default 3)                         seed=N            (default 11); seed=rank adds the rank
//   validation=F      ValidationFraction (default 0)      patience=N        early stopping on with this patience
//   lr=F              learning rate (default 0.01)        bn=1              BatchNormalization        syncbn=1  SyncBatchNorm
//   checkpoint=DIR    checkpoint folder                   throw=R:E         rank R throws at the end of epoch E
//   batch+rank=1      BatchSize + rank (a mismatch)     opt=sgd           SGD instead of AdamW
//   distill=1         the network is a student distilled from a teacher network trained first
//   scalelr=1         DataParallel.ScaleLearningRate    warmup=F          its LearningRateWarmupEpochs (default 1)
// Writes <output>/rank<R>.txt: size, MPI loaded or not, stop reason, best epoch, history, then every weight as bits.
var settings = args.Skip(2).Select(a => a.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);
string Get(string key, string fallback) => settings.TryGetValue(key, out var v) ? v : fallback;
bool dataParallel = Get("dp", "1") == "1";
int rank = dataParallel ? DataParallel.Rank : 0;
int size = dataParallel ? DataParallel.Size : 1;

var options = new NeuralNetworkOptions
{
    HiddenLayers = new[] { 16 },
    Dropout = 0,
    BatchNormalization = Get("bn", "0") == "1",
    Epochs = int.Parse(Get("epochs", "3"), CultureInfo.InvariantCulture),
    BatchSize = int.Parse(Get("batch", "10"), CultureInfo.InvariantCulture) + (Get("batch+rank", "0") == "1" ? rank : 0),
    ValidationFraction = double.Parse(Get("validation", "0"), CultureInfo.InvariantCulture),
    Seed = Get("seed", "11") == "rank" ? 11 + rank : int.Parse(Get("seed", "11"), CultureInfo.InvariantCulture),
    NumberOfThreads = 1,
    DataParallel = dataParallel
        ? new DataParallelOptions
        {
            SyncBatchNorm = Get("syncbn", "0") == "1",
            ScaleLearningRate = Get("scalelr", "0") == "1",
            LearningRateWarmupEpochs = double.Parse(Get("warmup", "1"), CultureInfo.InvariantCulture),
        }
        : null,
};
options.Optimizer.LearningRate = double.Parse(Get("lr", "0.01"), CultureInfo.InvariantCulture);
if (Get("opt", "adamw") == "sgd")
    options.Optimizer.Kind = OptimizerKind.Sgd;
if (settings.TryGetValue("patience", out var patience))
{
    options.EarlyStopping.Enabled = true;
    options.EarlyStopping.Patience = int.Parse(patience, CultureInfo.InvariantCulture);
}
if (settings.TryGetValue("checkpoint", out var checkpoint))
    options.Checkpoint.Directory = checkpoint;
if (settings.TryGetValue("throw", out var failure))
    options.Callbacks.Add(new FailOnRank(int.Parse(failure.Split(':')[0], CultureInfo.InvariantCulture), int.Parse(failure.Split(':')[1], CultureInfo.InvariantCulture), rank));

var ml = new MLContext(seed: 1);
var loader = ml.Data.CreateTextLoader(new TextLoader.Options
{
    Separators = new[] { ',' },
    HasHeader = true,
    Columns = new[] { new TextLoader.Column("Features", DataKind.Single, 0, 12), new TextLoader.Column("Label", DataKind.Single, 13) },
});
var data = ml.Data.Cache(loader.Load(args[0]));
var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
NetworkTransformerBase model;
TrainingState state;
if (Get("distill", "0") == "1")
{
    // The teacher: a wider network trained in this process alone (deterministic, so the same on every rank).
    var teacherOptions = new NeuralNetworkOptions { HiddenLayers = new[] { 32 }, Epochs = 5, ValidationFraction = 0, Seed = 5, NumberOfThreads = 1 };
    var teacher = ml.MulticlassClassification.Trainers.NeuralNetwork(teacherOptions).Fit(keyed);
    var distiller = ml.MulticlassClassification.Trainers.Distill(teacher, new MLExtensions.Distillation.DistillationOptions { Student = options });
    model = distiller.Fit(keyed);
    state = distiller.LastTrainingState!;
}
else
{
    var trainer = ml.MulticlassClassification.Trainers.NeuralNetwork(options);
    model = trainer.Fit(keyed);
    state = trainer.LastTrainingState!;
}

var lines = new List<string>
{
    $"size {size}",
    $"mpi-loaded {File.ReadAllText("/proc/self/maps").Contains("libmpi.so")}",
    $"stop {state.StopReason}",
    $"best {state.BestEpoch}",
    $"epochs {state.EpochsCompleted}",
    $"communication-seconds {state.CommunicationSeconds.ToString("R", CultureInfo.InvariantCulture)}",
};
foreach (var e in state.History)
    lines.Add($"epoch {e.Epoch} {Bits(e.TrainingLoss)} {Bits(e.ValidationLoss)} {Bits(e.ValidationMetric)}");
foreach (var (name, tensor) in model.Network.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
{
    var values = tensor.to(TorchSharp.torch.float32).data<float>().ToArray();
    lines.Add($"weight {name} {string.Join(' ', values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}");
}
File.WriteAllLines(Path.Combine(args[1], $"rank{rank}.txt"), lines);
Console.WriteLine($"rank {rank} of {size} done");
return 0;

static string Bits(double? value) => value is double v ? v.ToString("R", CultureInfo.InvariantCulture) : "-";

/// <summary>Throws on one rank at the end of one epoch, to test that the job ends instead of hanging.</summary>
sealed class FailOnRank(int failingRank, int epoch, int rank) : ITrainingCallback
{
    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        if (rank == failingRank && run.State.EpochsCompleted == epoch)
            throw new InvalidOperationException($"Injected failure on rank {rank} after epoch {epoch}.");
    }
}
