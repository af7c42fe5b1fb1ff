using System.Diagnostics;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// The one training loop of the library. Every trainer (tabular, vision, text, distillation) hands it an
/// <see cref="ITrainingTask"/> and batch sources; the loop owns the optimizer, the learning-rate schedule,
/// gradient accumulation and clipping, validation, callbacks (early stopping, checkpoints, progress) and
/// cancellation. Read it top to bottom: <see cref="Run"/> is the whole algorithm.
/// </summary>
/// <remarks>
/// With <see cref="NetworkTrainerOptions.DataParallel"/> set, the same loop runs on every rank of an MPI job; the few
/// places where data parallelism changes something go through <see cref="Distributed.DataParallelTraining"/> (null
/// otherwise): each rank reads its shard of every global batch, the gradients are added over the ranks before each
/// step, and the epoch's losses and metrics are reduced so that every rank decides alike.
/// </remarks>
public static class TrainingLoop
{
    /// <summary>Trains <paramref name="task"/> and returns the run (state and history).</summary>
    /// <param name="task">The network, loss and metric.</param>
    /// <param name="train">Training batches.</param>
    /// <param name="validation">Validation batches; null when the run has no validation data.</param>
    /// <param name="options">Training options (already validated).</param>
    /// <param name="generator">The run's random generator, already used to initialise the network.</param>
    /// <param name="device">Device the network lives on.</param>
    /// <param name="seed">The run's seed (shuffling).</param>
    /// <param name="host">The trainer's ML.NET host (cancellation).</param>
    /// <param name="channel">ML.NET channel for log messages.</param>
    /// <exception cref="OperationCanceledException">Training was cancelled; callbacks' end hooks have run.</exception>
    internal static TrainingRun Run(ITrainingTask task, IBatchSource train, IBatchSource? validation, NetworkTrainerOptions options,
        Generator generator, Device device, int seed, IHost host, IChannel channel)
    {
        using var optimizer = OptimizerFactory.Create(task.ParameterGroups(), options.Optimizer);
        using var precision = PrecisionPolicy.Create(options.Precision, options.LossScaling, task.PrecisionNetworks, channel);
        var run = new TrainingRun(task, options, optimizer, generator, device, seed, host, channel) { Precision = precision };
        var state = run.State;
        state.Precision = precision.Precision;
        state.LossScale = precision.Scaler?.Scale;
        state.MaxEpochs = options.Epochs;
        state.HasValidation = validation is not null;
        var probe = task.CreateValidationMetric();
        state.MetricName = probe.Name;
        state.MetricHigherIsBetter = probe.HigherIsBetter;
        state.StepsPerEpoch = StepsPerEpoch(train.RowCount, options.BatchSize * (options.DataParallel is null ? 1 : DataParallel.Size), options);
        using var parallel = run.Parallel = Distributed.DataParallelTraining.Start(run, train, validation);
        if (parallel is not null)
        {
            train = parallel.Shard(train);
            if (validation is not null && parallel.ShardsValidation)
                validation = parallel.Shard(validation);
        }

        var callbacks = BuiltInCallbacks(options).Concat(options.Callbacks).ToList();
        // A sweep watching this flow (see AmbientTrainingCallback) sees the epoch after every other callback,
        // so it reads the final history entry and its stop request is the last word.
        if (AmbientTrainingCallback.Current is { } ambient)
            callbacks.Add(ambient);
        var baseRates = optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();
        Exception? error = null;
        try
        {
            foreach (var callback in callbacks)
                callback.OnTrainBegin(run);

            // A resumed run whose checkpoint already recorded the end of training trains no further.
            for (int epoch = state.EpochsCompleted; epoch < options.Epochs && state.StopReason is null; epoch++)
            {
                ThrowIfCancelled(options, host);
                parallel?.BeginEpoch(generator, seed, epoch);
                foreach (var callback in callbacks)
                    callback.OnEpochBegin(run);

                long skippedBefore = state.SkippedSteps;
                var (trainLoss, seconds, rows) = TrainOneEpoch(run, train, epoch, baseRates, callbacks);
                parallel?.SynchronizeBuffers(task.Network);
                (double? validationLoss, double? metric) = (null, null);
                if (validation is not null)
                {
                    using var autocast = precision.EnterForward();
                    (validationLoss, metric) = Validate(task, validation, options.BatchSize, parallel is { ShardsValidation: true } ? parallel : null);
                }
#if DEBUG
                parallel?.AssertIdenticalWeights(task.Network, epoch);
#endif

                state.EpochsCompleted = epoch + 1;
                state.History.Add(new EpochResult(epoch + 1, trainLoss, validationLoss, metric, seconds, rows / Math.Max(seconds, 1e-9),
                    state.SkippedSteps - skippedBefore));
                var control = new TrainingControl();
                foreach (var callback in callbacks)
                    callback.OnEpochEnd(run, control);
                if (control.ShouldStop)
                    state.StopReason = control.Reason;
            }
            state.StopReason ??= StopReason.MaxEpochs;
            state.CommunicationSeconds = parallel?.CommunicationSeconds ?? 0;
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            foreach (var callback in callbacks)
                callback.OnTrainEnd(run, error);
            task.Network.eval();
        }
        return run;
    }

    private static (double Loss, double Seconds, long Rows) TrainOneEpoch(TrainingRun run, IBatchSource train, int epoch, double[] baseRates, List<ITrainingCallback> callbacks)
    {
        var options = run.Options;
        var task = run.Task;
        var optimizer = run.Optimizer;
        var state = run.State;
        var parallel = run.Parallel;
        task.Network.train();
        var clock = Stopwatch.StartNew();
        double lossSum = 0;
        long rows = 0;
        int batchIndex = 0;
        int accumulated = 0;
        double learningRate = baseRates[0];
        optimizer.zero_grad();
        foreach (var raw in train.GetBatches(epoch, options.BatchSize, options.Shuffle, run.Seed))
        {
            ThrowIfCancelled(options, run.Host);
            using var scope = torch.NewDisposeScope();
            using var batch = raw.To(run.Device);
            float lossValue = 0;
            if (batch.Count > 0) // data-parallel: a rank's share of the epoch's last, tiny global batch may be empty
            {
                Tensor output, loss;
                using (run.Precision.EnterForward())
                {
                    output = task.Forward(batch);
                    loss = task.ComputeLoss(output, batch); // loss ops are not autocast: they compute in float32 (a teacher's layers are)
                }
                lossValue = loss.item<float>();
                if (!float.IsFinite(lossValue))
                    throw new InvalidOperationException(
                        $"The training loss became {lossValue} in epoch {epoch + 1}, batch {batchIndex + 1}. Lower the learning rate " +
                        $"(now {options.Optimizer.LearningRate}) or set GradientClippingNorm.");
                if (parallel is not null)
                    loss = parallel.ScaleLoss(loss, batch);
                run.Precision.LossForBackward(options.GradientAccumulationSteps > 1 ? loss / options.GradientAccumulationSteps : loss).backward();
            }
            batchIndex++;
            lossSum += lossValue * batch.Count;
            rows += batch.Count;
            if (++accumulated == options.GradientAccumulationSteps)
            {
                learningRate = Step(run, baseRates, epoch);
                accumulated = 0;
            }
            var result = new BatchResult(batchIndex, batch.Count, lossValue, lossSum / rows, rows / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), learningRate);
            foreach (var callback in callbacks)
                callback.OnBatchEnd(run, result);
        }
        if (accumulated > 0)
            Step(run, baseRates, epoch); // the epoch's last, partial accumulation still counts
        double seconds = clock.Elapsed.TotalSeconds;
        if (parallel is not null)
            (lossSum, rows, seconds) = parallel.ReduceEpoch(lossSum, rows, seconds);
        if (rows == 0)
            throw new InvalidOperationException("The training data has no usable rows (all rows were skipped or the data is empty).");
        return (lossSum / rows, seconds, rows);
    }

    /// <summary>
    /// Unscales (float16), clips, sets the scheduled learning rate, steps the optimizer and clears gradients. A step
    /// that float16 loss scaling skips still advances the schedule (as with PyTorch's GradScaler and a scheduler).
    /// </summary>
    private static double Step(TrainingRun run, double[] baseRates, int epoch)
    {
        var options = run.Options;
        // Gradients are summed over the ranks first, so float16's overflow check and the step decide alike on every rank.
        run.Parallel?.ReduceGradients();
        bool take = run.Precision.BeforeStep(run.Task.ParameterGroups().SelectMany(g => g.Parameters));
        run.State.LossScale = run.Precision.Scaler?.Scale;
        if (take && options.GradientClippingNorm is double maxNorm)
            torch.nn.utils.clip_grad_norm_(run.Task.ParameterGroups().SelectMany(g => g.Parameters), maxNorm);
        double factor = options.LearningRateSchedule.Factor(run.State.Step, run.State.StepsPerEpoch * options.Epochs, epoch);
        if (run.Parallel is { } parallel)
            factor *= parallel.LearningRateScale(run.State.Step, run.State.StepsPerEpoch);
        int i = 0;
        foreach (var group in run.Optimizer.ParamGroups)
            group.LearningRate = baseRates[i++] * factor;
        if (take)
            run.Optimizer.step();
        else
            run.State.SkippedSteps++;
        run.Optimizer.zero_grad();
        run.State.Step++;
        return baseRates[0] * factor;
    }

    /// <summary>
    /// Mean loss and the metric over the validation batches, in evaluation mode without gradients; with
    /// <paramref name="parallel"/>, <paramref name="validation"/> is this rank's shard and the sums are added over the ranks.
    /// </summary>
    internal static (double? Loss, double? Metric) Validate(ITrainingTask task, IBatchSource validation, int batchSize,
        Distributed.DataParallelTraining? parallel = null)
    {
        task.Network.eval();
        using var noGrad = torch.no_grad();
        var metric = task.CreateValidationMetric();
        double lossSum = 0;
        long rows = 0;
        var device = task.Network.parameters().FirstOrDefault()?.device ?? torch.CPU;
        foreach (var raw in validation.GetBatches(0, batchSize, shuffle: false, seed: 0))
        {
            using var scope = torch.NewDisposeScope();
            using var batch = raw.To(device);
            if (batch.Count == 0)
                continue;
            var output = task.Forward(batch);
            lossSum += task.ComputeLoss(output, batch).item<float>() * batch.Count;
            metric.Update(output, batch);
            rows += batch.Count;
        }
        if (parallel is not null)
            (lossSum, rows) = parallel.ReduceValidation(lossSum, rows, metric);
        return rows == 0 ? (null, null) : (lossSum / rows, metric.Compute());
    }

    /// <summary>Optimizer steps per epoch over <paramref name="rows"/> rows in (global) batches of <paramref name="batchSize"/>.</summary>
    private static long StepsPerEpoch(long? rows, int batchSize, NetworkTrainerOptions options)
    {
        if (rows is not long n)
            return 1;
        long batches = (n + batchSize - 1) / batchSize;
        return Math.Max(1, (batches + options.GradientAccumulationSteps - 1) / options.GradientAccumulationSteps);
    }

    private static IEnumerable<ITrainingCallback> BuiltInCallbacks(NetworkTrainerOptions options)
    {
        // Order matters: early stopping decides before the checkpoint is written, so a resumed run
        // knows whether the previous one had already stopped; progress reports last.
        var earlyStopping = new EarlyStoppingCallback(options.EarlyStopping);
        yield return earlyStopping;
        if (options.Checkpoint.Directory is not null)
            yield return new CheckpointCallback(options.Checkpoint, earlyStopping);
        yield return new ProgressCallback(options.Progress, options.ProgressInterval);
    }

    private static void ThrowIfCancelled(NetworkTrainerOptions options, IHost host)
    {
        options.CancellationToken.ThrowIfCancellationRequested();
        host.CheckAlive();
    }
}
