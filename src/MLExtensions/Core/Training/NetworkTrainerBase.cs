using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;
using MLExtensions.Core.Internals;


namespace MLExtensions.Core;

/// <summary>
/// The shared <c>Fit</c> of every network trainer: validates the options, prepares the data, builds the
/// network from a per-run generator, hands it to the <see cref="TrainingLoop"/> and wraps the result in a
/// transformer. A trainer supplies only what differs: the row reader, the network, the task and the transformer.
/// </summary>
/// <typeparam name="TTransformer">The fitted transformer.</typeparam>
public abstract class NetworkTrainerBase<TTransformer> : IEstimator<TTransformer>
    where TTransformer : class, ITransformer
{
    private readonly NetworkTrainerOptions _options;

    /// <summary>Registers the trainer with the environment and validates <paramref name="options"/>.</summary>
    protected NetworkTrainerBase(IHostEnvironment env, string name, NetworkTrainerOptions options)
    {
        Host = (env ?? throw new ArgumentNullException(nameof(env))).Register(name);
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>The trainer's ML.NET host.</summary>
    protected IHost Host { get; }

    /// <summary>
    /// Set by a distillation trainer that uses this trainer for its student: adds the teacher's outputs to the
    /// batches and wraps every task in the distillation loss. Null for ordinary training.
    /// </summary>
    internal IDistillationHooks? Distillation { get; set; }

    /// <summary>What the last <see cref="Fit"/> did: epochs, history, best epoch, why it stopped.</summary>
    public TrainingState? LastTrainingState { get; private set; }

    /// <summary>Trains the network on <paramref name="input"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type; the message names it.</exception>
    /// <exception cref="InvalidOperationException">The data has no usable rows, or training diverged.</exception>
    /// <exception cref="OperationCanceledException">Training was cancelled.</exception>
    public TTransformer Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        if (_options.DataParallel is null)
            return FitInThisProcess(input);
        DataParallel.Initialize();
        try
        {
            return FitInThisProcess(input);
        }
        catch (Exception e) when (DataParallel.Size > 1)
        {
            // The other ranks would wait forever in their next collective: end the job with this rank's message.
            DataParallel.Abort(e);
            throw;
        }
    }

    private TTransformer FitInThisProcess(IDataView input)
    {
        TorchNativeLoader.EnsureLoaded();
        using var channel = Host.Start("Training");
        foreach (string action in TorchNativeLoader.Actions)
            channel.Trace(MessageSensitivity.None, action);
        if (_options.NumberOfThreads is int threads)
            torch.set_num_threads(threads);

        int seed = TorchDevices.ResolveSeed(Host, _options.Seed);
        var device = TorchDevices.Resolve(Host, channel);
        using var data = PrepareData(input, seed, channel);
        using var generator = new Generator((ulong)seed, CPU);
        var network = CreateNetwork(input.Schema, data, generator);
        try
        {
            Distillation?.InitializeStudent(network, generator, channel);
            network.to(device);
            var context = new TrainingContext(Host, channel, generator, device, seed);
            var state = TrainNetwork(network, input.Schema, data, context);
            LastTrainingState = state;
            network.to(CPU);
            return CreateTransformer(network, input.Schema, state);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);

    /// <summary>
    /// Turns the data given to <see cref="Fit"/> into training and validation batches. The default holds out the
    /// validation split and reads rows through <see cref="CreateRowReader"/>; trainers whose rows are not fixed-size
    /// float vectors (e.g. token sequences) build their own sources.
    /// </summary>
    protected virtual TrainingData PrepareData(IDataView input, int seed, IChannel channel)
    {
        if (Distillation is not { } hooks)
            return TrainingData.Prepare(Host, input, _options, seed, CreateRowReader, channel);
        var data = TrainingData.Prepare(Host, input, _options, seed, schema => hooks.WrapReader(CreateRowReader(schema), schema), channel);
        return hooks.WrapData(data);
    }

    /// <summary>Binds and validates the input columns of <paramref name="schema"/> (training or validation data).</summary>
    protected virtual IRowReaderFactory CreateRowReader(DataViewSchema schema) =>
        throw new NotSupportedException($"{GetType().Name} prepares its data itself and has no row reader.");

    /// <summary>Builds the network; draw all random initial values from <paramref name="generator"/>.</summary>
    protected abstract nn.Module<Tensor, Tensor> CreateNetwork(DataViewSchema schema, TrainingData data, Generator generator);

    /// <summary>The loss and metric around the network.</summary>
    protected abstract ITrainingTask CreateTask(nn.Module<Tensor, Tensor> network, DataViewSchema schema);

    /// <summary>
    /// Trains the network. The default runs the <see cref="TrainingLoop"/> once with <see cref="CreateTask"/>;
    /// trainers with several phases (e.g. head-only, then fine-tuning) call the loop once per phase.
    /// </summary>
    protected virtual TrainingState TrainNetwork(nn.Module<Tensor, Tensor> network, DataViewSchema schema, TrainingData data, TrainingContext context) =>
        RunLoop(CreateTask(network, schema), data.Train, data.Validation, _options, context);

    /// <summary>Runs the shared training loop once (with the distillation loss around <paramref name="task"/> when distilling).</summary>
    protected TrainingState RunLoop(ITrainingTask task, IBatchSource train, IBatchSource? validation, NetworkTrainerOptions options, TrainingContext context)
    {
        if (Distillation is not null)
            task = Distillation.WrapTask(task, context);
        return TrainingLoop.Run(task, train, validation, options, context.Generator, context.Device, context.Seed, context.Host, context.Channel).State;
    }

    /// <summary>Wraps the trained network (on the CPU, evaluation mode) in the fitted transformer.</summary>
    protected abstract TTransformer CreateTransformer(nn.Module<Tensor, Tensor> network, DataViewSchema schema, TrainingState state);
}

/// <summary>What a trainer's training step needs besides the task and the data.</summary>
/// <param name="Host">The trainer's ML.NET host.</param>
/// <param name="Channel">The channel for log messages (reaches <c>MLContext.Log</c>).</param>
/// <param name="Generator">The run's random generator.</param>
/// <param name="Device">The training device.</param>
/// <param name="Seed">The run's seed.</param>
public sealed record TrainingContext(IHost Host, IChannel Channel, Generator Generator, Device Device, int Seed);
