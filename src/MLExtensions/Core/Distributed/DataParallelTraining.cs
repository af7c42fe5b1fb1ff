using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core.Distributed;

/// <summary>
/// What the <see cref="TrainingLoop"/> does differently when <see cref="NetworkTrainerOptions.DataParallel"/> is set. The
/// loop stays the one loop of the library; at a handful of points it asks this object to shard the batches, scale the
/// loss, add the gradients over the ranks, reduce the epoch's figures and keep the ranks' state identical.
/// </summary>
/// <remarks>
/// The invariant: after every optimizer step all ranks hold bit-identical weights. It holds because training starts from
/// rank 0's weights and buffers, every rank steps the same optimizer with the same summed gradient, and everything a
/// decision depends on (losses, metrics, early stopping, the schedule) is reduced over the ranks first. Debug builds check it
/// at every epoch end.
/// </remarks>
internal sealed class DataParallelTraining : IDisposable
{
    /// <summary>Purpose code of the per-rank generator seeds (see <see cref="BeginEpoch"/>).</summary>
    private const int RankGeneratorPurpose = 0x44500000;

    private readonly MpiCommunicator _communicator;
    private readonly DataParallelOptions _options;
    private readonly GradientBuckets _gradients;
    private readonly SyncBatchNorm? _syncBatchNorm;

    private DataParallelTraining(MpiCommunicator communicator, DataParallelOptions options, ITrainingTask task)
    {
        _communicator = communicator;
        _options = options;
        _gradients = new GradientBuckets(communicator, task.ParameterGroups().SelectMany(g => g.Parameters), options.BucketSizeMegabytes);
        _syncBatchNorm = options.SyncBatchNorm && communicator.Size > 1 ? SyncBatchNorm.Attach(task.Network, communicator) : null;
    }

    /// <summary>This process's rank.</summary>
    public int Rank => _communicator.Rank;

    /// <summary>The number of ranks.</summary>
    public int Size => _communicator.Size;

    /// <summary>Whether this rank writes checkpoints.</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>Whether validation batches are sharded and reduced (the task's metric can be added over ranks).</summary>
    public bool ShardsValidation { get; private set; }

    /// <summary>Fused gradient buffers per step.</summary>
    public int Buckets => _gradients.Count;

    /// <summary>Gradient floats added over the ranks per step.</summary>
    public long GradientElements => _gradients.Elements;

    /// <summary>
    /// Joins the job for one call of the loop: checks that all ranks run the same training, gives every rank rank 0's weights
    /// and buffers, and prepares the gradient buckets. Null when data parallelism is off.
    /// </summary>
    public static DataParallelTraining? Start(TrainingRun run, IBatchSource train, IBatchSource? validation)
    {
        if (run.Options.DataParallel is not { } options)
            return null;
        var communicator = DataParallel.Communicator;
        RankAgreement.Check(communicator, RankAgreement.Describe(run, train.RowCount, validation?.RowCount));
        var parallel = new DataParallelTraining(communicator, options, run.Task)
        {
            ShardsValidation = run.Task.CreateValidationMetric().GetSums() is not null,
        };
        parallel.BroadcastState(run.Task.Network, buffersOnly: false);
        return parallel;
    }

    /// <summary>This rank's share of <paramref name="source"/>.</summary>
    public IBatchSource Shard(IBatchSource source) => Size == 1 ? source : new ShardedBatchSource(source, Rank, Size);

    /// <summary>
    /// Gives ranks other than 0 their own random stream for the epoch (dropout masks, augmentation), derived from the seed,
    /// the rank and the epoch, so resumed runs repeat it. Rank 0 keeps the run's generator, so one rank trains exactly like a
    /// single process.
    /// </summary>
    public void BeginEpoch(Generator generator, int seed, int epoch)
    {
        if (Rank > 0)
            generator.manual_seed(Seeds.Derive(seed, RankGeneratorPurpose + Rank, epoch));
    }

    /// <summary>
    /// The loss this rank back-propagates: with averaging, weighted by its share of the global batch, so that the gradients
    /// added over the ranks are the mean over the global batch, as one process with that batch would compute it.
    /// </summary>
    public Tensor ScaleLoss(Tensor loss, Batch batch)
    {
        if (!_options.AverageGradients || batch.Count == batch.GlobalCount)
            return loss;
        // An explicit Scalar that lives through the native call (TorchSharp's implicit-Scalar GC race, see RootedScalars).
        using Scalar share = ((double)batch.Count / batch.GlobalCount).ToScalar();
        return loss.mul(share);
    }

    /// <summary>Adds every trainable parameter's gradient over the ranks (before clipping and the optimizer step).</summary>
    public void ReduceGradients()
    {
        if (Size > 1) // a sum over one rank changes nothing
            _gradients.SumOverRanks();
    }

    /// <summary>Seconds spent in gradient all-reduces so far.</summary>
    public double CommunicationSeconds => _gradients.CommunicationTime.TotalSeconds;

    /// <summary>The linear-scaling factor of the learning rate at optimizer step <paramref name="step"/> (1 when off).</summary>
    public double LearningRateScale(long step, long stepsPerEpoch)
    {
        if (!_options.ScaleLearningRate || Size == 1)
            return 1;
        double warmupSteps = _options.LearningRateWarmupEpochs * stepsPerEpoch;
        double progress = warmupSteps <= 0 ? 1 : Math.Min(1, (step + 1) / warmupSteps);
        return 1 + (Size - 1) * progress;
    }

    /// <summary>The epoch's training loss sum and rows over all ranks, and the slowest rank's seconds.</summary>
    public (double LossSum, long Rows, double Seconds) ReduceEpoch(double lossSum, long rows, double seconds)
    {
        Span<double> sums = stackalloc double[] { lossSum, rows };
        _communicator.SumInPlace(sums);
        Span<double> slowest = stackalloc double[] { seconds };
        _communicator.MaxInPlace(slowest);
        return (sums[0], (long)sums[1], slowest[0]);
    }

    /// <summary>Adds the validation loss sum, rows and the metric's sums over the ranks; the metric then holds the totals.</summary>
    public (double LossSum, long Rows) ReduceValidation(double lossSum, long rows, IValidationMetric metric)
    {
        var metricSums = metric.GetSums()!;
        var all = new double[2 + metricSums.Length];
        all[0] = lossSum;
        all[1] = rows;
        metricSums.CopyTo(all, 2);
        _communicator.SumInPlace(all);
        metric.SetSums(all.AsSpan(2));
        return (all[0], (long)all[1]);
    }

    /// <summary>
    /// Gives every rank rank 0's buffers (BatchNorm running statistics, which each rank updated from its own rows), so that
    /// validation, early stopping's snapshots and the saved model are the same everywhere.
    /// </summary>
    public void SynchronizeBuffers(nn.Module network) => BroadcastState(network, buffersOnly: true);

    /// <summary>Rank 0's checkpoint bytes on every rank (null when rank 0 has none): checkpoints need not be on a shared disk.</summary>
    public byte[]? ShareCheckpoint(Func<byte[]?> readOnRoot)
    {
        byte[]? mine = IsRoot ? readOnRoot() : null;
        Span<byte> present = stackalloc byte[] { (byte)(mine is null ? 0 : 1) };
        _communicator.BroadcastFromRoot(present);
        if (present[0] == 0)
            return null;
        return _communicator.BroadcastFromRoot(IsRoot ? mine! : null);
    }

    /// <summary>Throws when the ranks' weights differ (debug builds call it at every epoch end).</summary>
    public void AssertIdenticalWeights(nn.Module network, int epoch)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (_, tensor) in network.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            using var cpu = tensor.detach().cpu().contiguous();
            sha.AppendData(cpu.bytes);
        }
        var hash = sha.GetHashAndReset();
        double mine = BitConverter.ToInt64(hash, 0) & 0xFFFFFFFFFFFFL;
        var all = _communicator.Gather(new[] { mine });
        if (all.Any(h => h != all[0]))
            throw new InvalidOperationException(
                $"The data-parallel ranks' weights differ after epoch {epoch + 1} (hashes {string.Join(", ", all)}): a step was not taken alike on every rank.");
    }

    private void BroadcastState(nn.Module network, bool buffersOnly)
    {
        if (Size == 1)
            return;
        using var noGrad = torch.no_grad();
        var tensors = buffersOnly
            ? network.named_buffers().Select(b => b.buffer)
            : network.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value);
        foreach (var tensor in tensors)
        {
            if (tensor.numel() == 0)
                continue;
            if (tensor.device.type == DeviceType.CPU && tensor.is_contiguous())
            {
                _communicator.BroadcastFromRoot(tensor.bytes);
                continue;
            }
            using var staging = tensor.detach().cpu().contiguous();
            _communicator.BroadcastFromRoot(staging.bytes);
            tensor.copy_(staging);
        }
    }

    public void Dispose()
    {
        _gradients.Dispose();
        _syncBatchNorm?.Dispose();
    }
}
