using Microsoft.ML.Runtime;
using System.Text.Json;

namespace MLExtensions.Core;

/// <summary>
/// Writes a checkpoint after every epoch and, at the start of training, resumes from the checkpoint in
/// the folder when there is one.
/// </summary>
/// <remarks>
/// A checkpoint holds everything that influences the rest of the run: current weights, optimizer state,
/// the random generator's state, the loop state and history, and early stopping's best weights and
/// counters. Shuffling is a function of (seed, epoch), so it needs no state. The file is written to a
/// temporary name and renamed, so a crash leaves the previous checkpoint intact.
/// In data-parallel training only rank 0 writes, and rank 0 reads the checkpoint and sends its bytes to the other
/// ranks (the folder need not be shared). A checkpoint resumes on any number of ranks with the same global batch
/// (BatchSize × ranks), which is recorded in it.
/// </remarks>
internal sealed class CheckpointCallback : ITrainingCallback
{
    /// <summary>The checkpoint file name inside <see cref="CheckpointOptions.Directory"/>.</summary>
    public const string FileName = "checkpoint.mlxckpt";

    private const string Magic = "MLXCKPT";
    private const int FormatVersion = 1;

    /// <summary>Early stopping's best loss is +∞ until a validated epoch improves it (always, without validation data).</summary>
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly CheckpointOptions _options;
    private readonly EarlyStoppingCallback _earlyStopping;

    public CheckpointCallback(CheckpointOptions options, EarlyStoppingCallback earlyStopping)
    {
        _options = options;
        _earlyStopping = earlyStopping;
    }

    private string FilePath => Path.Combine(_options.Directory!, FileName);

    public void OnTrainBegin(TrainingRun run)
    {
        if (run.Parallel is { } parallel)
        {
            var bytes = parallel.ShareCheckpoint(() => _options.ResumeIfPresent && File.Exists(FilePath) ? File.ReadAllBytes(FilePath) : null);
            if (bytes is not null)
                Resume(run, new MemoryStream(bytes));
            return;
        }
        if (!_options.ResumeIfPresent || !File.Exists(FilePath))
            return;
        Resume(run, File.OpenRead(FilePath));
    }

    private void Resume(TrainingRun run, Stream checkpoint)
    {
        using var stream = checkpoint;
        using var reader = new BinaryReader(stream);
        if (reader.ReadString() != Magic)
            throw new InvalidDataException($"'{FilePath}' is not an MLExtensions checkpoint.");
        int version = reader.ReadInt32();
        if (version != FormatVersion)
            throw new InvalidDataException($"Checkpoint '{FilePath}' has format version {version}; this version of MLExtensions reads version {FormatVersion}.");
        var saved = JsonSerializer.Deserialize<SavedState>(reader.ReadString(), Json)
            ?? throw new InvalidDataException($"Checkpoint '{FilePath}' has no state record.");
        string fingerprint = Fingerprint(run);
        if (saved.Fingerprint != fingerprint)
            throw new InvalidOperationException(
                $"Checkpoint '{FilePath}' was written by a different run ({saved.Fingerprint}); this run is {fingerprint}. " +
                "Use an empty checkpoint folder or set Checkpoint.ResumeIfPresent = false.");
        if (saved.GlobalBatch is int savedBatch && savedBatch != GlobalBatch(run))
            throw new InvalidOperationException(
                $"Checkpoint '{FilePath}' was written with a global batch of {savedBatch} rows (BatchSize × data-parallel ranks); this run's is " +
                $"{GlobalBatch(run)} (BatchSize {run.Options.BatchSize} × {(run.Parallel?.Size ?? 1)} rank(s)). Resume with the same global batch.");

        if (saved.Precision != run.State.Precision)
            throw new InvalidOperationException(
                $"Checkpoint '{FilePath}' was trained in precision {saved.Precision}; this run trains in {run.State.Precision}. " +
                "Resume with the same Precision, or use an empty checkpoint folder.");
        using (var weights = WeightSnapshot.Load(reader))
            weights.RestoreInto(run.Task.Network);
        var best = reader.ReadBoolean() ? WeightSnapshot.Load(reader) : null;
        _earlyStopping.Restore(saved.BestLoss, saved.Wait, best);
        run.Optimizer.load_state_dict(reader);
        using (var generatorState = TensorIO.Read(reader))
            run.Generator.set_state(generatorState);

        var state = run.State;
        state.EpochsCompleted = saved.EpochsCompleted;
        state.Step = saved.Step;
        state.BestEpoch = saved.BestEpoch;
        state.History = saved.History;
        state.StopReason = saved.StopReason;
        state.SkippedSteps = saved.SkippedSteps;
        if (run.Precision.Scaler is { } scaler && saved.LossScale is double scale)
        {
            scaler.Restore(scale, saved.LossScaleGrowthTracker);
            state.LossScale = scale;
        }
        run.Channel.Info(MessageSensitivity.None, "Resumed from checkpoint '{0}' after epoch {1}.", FilePath, saved.EpochsCompleted);
    }

    public void OnEpochEnd(TrainingRun run, TrainingControl control)
    {
        if (run.Parallel is { IsRoot: false })
            return; // every rank holds the same state; rank 0 writes it
        Directory.CreateDirectory(_options.Directory!);
        string temp = FilePath + ".tmp";
        using (var stream = File.Create(temp))
        using (var writer = new BinaryWriter(stream))
        {
            var state = run.State;
            writer.Write(Magic);
            writer.Write(FormatVersion);
            var saved = new SavedState(Fingerprint(run), state.EpochsCompleted, state.Step, state.BestEpoch, state.History,
                _earlyStopping.Best, _earlyStopping.Wait, control.ShouldStop ? control.Reason : null,
                run.Options.DataParallel is null ? null : GlobalBatch(run),
                state.Precision, state.SkippedSteps, run.Precision.Scaler?.Scale, run.Precision.Scaler?.GrowthTracker ?? 0);
            writer.Write(JsonSerializer.Serialize(saved, Json));
            using (var current = WeightSnapshot.Take(run.Task.Network))
                current.Save(writer);
            writer.Write(_earlyStopping.BestWeights is not null);
            _earlyStopping.BestWeights?.Save(writer);
            run.Optimizer.save_state_dict(writer);
            using (var generatorState = run.Generator.get_state())
                TensorIO.Write(writer, generatorState);
        }
        File.Move(temp, FilePath, overwrite: true);
    }

    /// <summary>Identifies a run well enough to refuse resuming someone else's checkpoint.</summary>
    private static string Fingerprint(TrainingRun run)
    {
        var names = run.Task.Network.named_parameters().Select(p => $"{p.name}[{string.Join('x', p.parameter.shape)}]");
        return $"seed {run.Seed}, {run.Options.Optimizer.Kind}, parameters {StableHash(string.Join(',', names))}";
    }

    /// <summary>Rows per optimizer step over all ranks (before gradient accumulation).</summary>
    private static int GlobalBatch(TrainingRun run) => run.Options.BatchSize * (run.Options.DataParallel is null ? 1 : DataParallel.Size);

    private static string StableHash(string text)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text));
        return Convert.ToHexString(hash, 0, 6);
    }

    // GlobalBatch: BatchSize × ranks of a data-parallel run; not written (null) by single-process runs.
    // Precision and loss-scaler fields default to float32 and no scaler, so checkpoints written before they existed still load.
    private sealed record SavedState(string Fingerprint, int EpochsCompleted, long Step, int BestEpoch, List<EpochResult> History,
        double BestLoss, int Wait, StopReason? StopReason,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] int? GlobalBatch = null,
        TrainingPrecision Precision = TrainingPrecision.Float32, long SkippedSteps = 0, double? LossScale = null, int LossScaleGrowthTracker = 0);
}
