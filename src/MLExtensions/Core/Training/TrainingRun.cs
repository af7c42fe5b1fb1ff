using Microsoft.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Everything a callback may look at during one call of <see cref="TrainingLoop.Run"/>.</summary>
public sealed class TrainingRun
{
    internal TrainingRun(ITrainingTask task, NetworkTrainerOptions options, OptimizerHelper optimizer, Generator generator, Device device, int seed, IHost host, IChannel channel)
    {
        Task = task;
        Options = options;
        Optimizer = optimizer;
        Generator = generator;
        Device = device;
        Seed = seed;
        Channel = channel;
        Host = host;
    }

    /// <summary>The task being trained.</summary>
    public ITrainingTask Task { get; }

    /// <summary>The training options.</summary>
    public NetworkTrainerOptions Options { get; }

    /// <summary>The optimizer.</summary>
    public OptimizerHelper Optimizer { get; }

    /// <summary>The run's random generator (weight init, dropout); its state is checkpointed.</summary>
    public Generator Generator { get; }

    /// <summary>The device training runs on.</summary>
    public Device Device { get; }

    /// <summary>The run's seed.</summary>
    public int Seed { get; }

    /// <summary>The loop's state.</summary>
    public TrainingState State { get; } = new();

    /// <summary>Data-parallel training of this run; null in single-process training.</summary>
    internal Distributed.DataParallelTraining? Parallel { get; set; }

    /// <summary>The ML.NET channel of the trainer (messages reach <c>MLContext.Log</c>).</summary>
    internal IChannel Channel { get; }

    /// <summary>The run's precision policy (autocast scope, float16 loss scaler).</summary>
    internal PrecisionPolicy Precision { get; init; } = null!;

    /// <summary>The trainer's host (cancellation through the ML.NET environment).</summary>
    internal IHost Host { get; }
}
