namespace MLExtensions.Core;

/// <summary>The communication engine of data-parallel training.</summary>
public enum DataParallelBackend
{
    /// <summary>Open MPI (<c>libmpi.so.40</c>): start the program with <c>mpirun</c> or Slurm's <c>srun</c>.</summary>
    Mpi,
}

/// <summary>
/// Data-parallel training across processes (one or many machines), as Horovod and PyTorch DDP do it: every process
/// (rank) runs the same program on the same data, trains on its own shard of every batch, and the gradients are added
/// over the ranks before each optimizer step, so all ranks hold the same weights. See docs/distributed.md.
/// </summary>
/// <remarks>
/// <see cref="NetworkTrainerOptions.BatchSize"/> stays the batch of one rank: a step of N ranks trains on N ×
/// BatchSize rows (the global batch), so 2 ranks × 32 rows train like one process × 64 rows.
/// </remarks>
public sealed class DataParallelOptions
{
    /// <summary>The communication engine. Default <see cref="DataParallelBackend.Mpi"/>.</summary>
    public DataParallelBackend Backend { get; set; } = DataParallelBackend.Mpi;

    /// <summary>
    /// Gradients are fused into buffers of about this size before each all-reduce, &gt; 0. Fewer, larger messages
    /// amortise the per-message latency of the network; Horovod's default is 64 MB, DDP's 25 MB. Default 25.
    /// </summary>
    public double BucketSizeMegabytes { get; set; } = 25;

    /// <summary>
    /// True (default): the gradient of a step is the mean over the global batch, as one process with the global batch
    /// would compute it. False: the ranks' gradients are summed (Horovod's <c>op=Sum</c>), N times larger with N ranks.
    /// </summary>
    public bool AverageGradients { get; set; } = true;

    /// <summary>
    /// Linear scaling rule (Goyal et al., 2017): multiply the learning rate by the number of ranks, reached gradually over
    /// <see cref="LearningRateWarmupEpochs"/> epochs of warm-up from the single-process rate. Default false: the
    /// learning rate is used as given (tune it for the global batch).
    /// </summary>
    public bool ScaleLearningRate { get; set; }

    /// <summary>With <see cref="ScaleLearningRate"/>: epochs over which the scale grows linearly from 1 to the number of ranks, ≥ 0. Default 1.</summary>
    public double LearningRateWarmupEpochs { get; set; } = 1;

    /// <summary>
    /// False (default): BatchNorm layers normalise with the statistics of each rank's rows (as Horovod and DDP do); the
    /// running statistics of rank 0 are given to every rank at the end of each epoch. True: synchronised BatchNorm, the
    /// batch statistics are computed over the global batch (one small all-reduce per BatchNorm layer and pass).
    /// </summary>
    public bool SyncBatchNorm { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Backend))
            throw new ArgumentOutOfRangeException("DataParallel.Backend", Backend, "Unknown data-parallel backend.");
        if (!(BucketSizeMegabytes > 0) || double.IsInfinity(BucketSizeMegabytes))
            throw new ArgumentOutOfRangeException("DataParallel.BucketSizeMegabytes", BucketSizeMegabytes, "Must be a finite number > 0.");
        if (!(LearningRateWarmupEpochs >= 0) || double.IsInfinity(LearningRateWarmupEpochs))
            throw new ArgumentOutOfRangeException("DataParallel.LearningRateWarmupEpochs", LearningRateWarmupEpochs, "Must be a finite number ≥ 0.");
    }
}
