using System.Text.Json.Serialization;
using Microsoft.ML;

namespace MLExtensions.Core;

/// <summary>
/// How a network is trained: epochs, batches, optimizer, schedule, validation, early stopping,
/// checkpoints, seed and progress reporting. Every trainer's options class derives from this one, so
/// these settings mean the same thing everywhere.
/// </summary>
public abstract class NetworkTrainerOptions
{
    /// <summary>Maximum number of passes over the training data, ≥ 1. Early stopping may end training sooner.</summary>
    public int Epochs { get; set; } = 100;

    /// <summary>Rows per optimizer step, ≥ 1. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Optimizer settings.</summary>
    public OptimizerOptions Optimizer { get; set; } = new();

    /// <summary>Learning-rate schedule settings.</summary>
    public LearningRateScheduleOptions LearningRateSchedule { get; set; } = new();

    /// <summary>Clip the global gradient norm to this value before each step; null disables clipping. Default null.</summary>
    public double? GradientClippingNorm { get; set; }

    /// <summary>Batches whose gradients are summed before one optimizer step, ≥ 1. Default 1.</summary>
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>
    /// Data used to select the best epoch and stop early. When null, <see cref="ValidationFraction"/> of the
    /// training rows are held out instead.
    /// </summary>
    [JsonIgnore]
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// Fraction of the training rows held out for validation when <see cref="ValidationData"/> is null,
    /// in [0, 0.9]. 0 trains on all rows without validation (early stopping is then off). Default 0.1.
    /// </summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>Early-stopping settings (needs validation data).</summary>
    public EarlyStoppingOptions EarlyStopping { get; set; } = new();

    /// <summary>Checkpoint settings.</summary>
    public CheckpointOptions Checkpoint { get; set; } = new();

    /// <summary>
    /// Seed for weight initialisation, dropout, shuffling and the validation split. Null takes the
    /// <see cref="MLContext"/> seed (or 0 when the context has none). Training is deterministic for a fixed seed.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>Reshuffle the training rows every epoch. Default true.</summary>
    public bool Shuffle { get; set; } = true;

    /// <summary>How training data is read. Default <see cref="DataCaching.Auto"/>.</summary>
    public DataCaching DataCaching { get; set; } = DataCaching.Auto;

    /// <summary>
    /// Number format of the matrix products and convolutions during training (master weights, optimizer state,
    /// gradients, losses and normalization stay float32). Default <see cref="TrainingPrecision.Float32"/>.
    /// See docs/precision.md.
    /// </summary>
    public TrainingPrecision Precision { get; set; } = TrainingPrecision.Float32;

    /// <summary>
    /// Number format in which the fitted transformer scores (saved with the model). Default
    /// <see cref="Core.ScoringPrecision.Float32"/>; <see cref="Core.ScoringPrecision.BFloat16"/> is faster on CPUs with
    /// native bfloat16 and stays within bfloat16 tolerance of float32.
    /// </summary>
    public ScoringPrecision ScoringPrecision { get; set; } = ScoringPrecision.Float32;

    /// <summary>Dynamic loss scaling used with <see cref="TrainingPrecision.Float16"/>.</summary>
    public LossScalingOptions LossScaling { get; set; } = new();

    /// <summary>Intra-op threads used by TorchSharp; null keeps TorchSharp's default (the core count). Default null.</summary>
    public int? NumberOfThreads { get; set; }

    /// <summary>
    /// Data-parallel training across processes started by <c>mpirun</c> (or Slurm's <c>srun</c>): each rank trains on its
    /// shard of every batch and the gradients are added over the ranks. Null (default): training in this process only.
    /// See <see cref="DataParallelOptions"/> and docs/distributed.md.
    /// </summary>
    public DataParallelOptions? DataParallel { get; set; }

    /// <summary>Receives a report after every <see cref="ProgressInterval"/> batches and at each epoch end.</summary>
    [JsonIgnore]
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Batches between two progress reports, ≥ 1. Default 50.</summary>
    public int ProgressInterval { get; set; } = 50;

    /// <summary>Cancels training; <see cref="OperationCanceledException"/> is thrown and nothing is half-written.</summary>
    [JsonIgnore]
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Extra callbacks run by the training loop after the built-in ones.</summary>
    [JsonIgnore]
    public IList<ITrainingCallback> Callbacks { get; } = new List<ITrainingCallback>();

    /// <summary>
    /// A copy for one phase of a multi-phase training (e.g. head-only then fine-tuning): same settings, its own
    /// epoch count and, when checkpointing, its own checkpoint subfolder.
    /// </summary>
    internal NetworkTrainerOptions ForPhase(int epochs, string phaseName)
    {
        var copy = (NetworkTrainerOptions)MemberwiseClone();
        copy.Epochs = epochs;
        copy.Checkpoint = new CheckpointOptions
        {
            Directory = Checkpoint.Directory is null ? null : Path.Combine(Checkpoint.Directory, phaseName),
            ResumeIfPresent = Checkpoint.ResumeIfPresent,
        };
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public virtual void Validate()
    {
        Check.Positive(Epochs, nameof(Epochs));
        Check.Positive(BatchSize, nameof(BatchSize));
        Check.Positive(GradientAccumulationSteps, nameof(GradientAccumulationSteps));
        Check.Positive(ProgressInterval, nameof(ProgressInterval));
        if (GradientClippingNorm is double clip)
            Check.Positive(clip, nameof(GradientClippingNorm));
        Check.InRange(ValidationFraction, 0, 0.9, nameof(ValidationFraction), "in [0, 0.9]");
        if (NumberOfThreads is int threads)
            Check.Positive(threads, nameof(NumberOfThreads));
        (Optimizer ?? throw new ArgumentNullException(nameof(Optimizer))).Validate();
        (LearningRateSchedule ?? throw new ArgumentNullException(nameof(LearningRateSchedule))).Validate();
        (EarlyStopping ?? throw new ArgumentNullException(nameof(EarlyStopping))).Validate();
        _ = Checkpoint ?? throw new ArgumentNullException(nameof(Checkpoint));
        DataParallel?.Validate();
        if (!Enum.IsDefined(Precision))
            throw new ArgumentOutOfRangeException(nameof(Precision), Precision, $"{nameof(Precision)} must be one of {string.Join(", ", Enum.GetNames<TrainingPrecision>())}; found {Precision}.");
        if (!Enum.IsDefined(ScoringPrecision))
            throw new ArgumentOutOfRangeException(nameof(ScoringPrecision), ScoringPrecision, $"{nameof(ScoringPrecision)} must be Float32 or BFloat16; found {ScoringPrecision}.");
        (LossScaling ?? throw new ArgumentNullException(nameof(LossScaling))).Validate();
    }
}

/// <summary>Where the training rows live while a network trains.</summary>
public enum DataCaching
{
    /// <summary>In memory when the rows fit in <see cref="DataCachingLimits.MemoryLimitBytes"/> (256 MiB of tensors), otherwise streamed.</summary>
    Auto,

    /// <summary>Read once into memory; epochs shuffle row indices. Fastest.</summary>
    Memory,

    /// <summary>Read through ML.NET cursors every epoch (pool-shuffled); the data set is never held in memory.</summary>
    Streaming,
}

/// <summary>Limits used by <see cref="DataCaching.Auto"/>.</summary>
public static class DataCachingLimits
{
    /// <summary>The largest training set (features and targets, in bytes) that <see cref="DataCaching.Auto"/> keeps in memory.</summary>
    public const long MemoryLimitBytes = 256L * 1024 * 1024;
}
