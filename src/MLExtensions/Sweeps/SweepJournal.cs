using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLExtensions.Onnx.Export;

namespace MLExtensions.Sweeps;

/// <summary>
/// The sweep's record on disk: JSON lines, a header describing the sweep and one line per finished trial. The whole
/// file is rewritten atomically (temporary file, then rename) after every trial, so an interrupted sweep leaves either
/// the previous journal or the new one, never half a line. Resuming reads the trials back and the sweep continues
/// with the next index; since proposals depend only on the seed and the earlier trials, the rest of the sweep is the
/// one an uninterrupted run would have done.
/// </summary>
internal sealed class SweepJournal
{
    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly string _path;
    private readonly string _header;
    private readonly List<string> _lines = new();

    private SweepJournal(string path, string header)
    {
        _path = path;
        _header = header;
    }

    /// <summary>Opens (or starts) the journal at <paramref name="path"/> and returns the trials it already holds.</summary>
    /// <exception cref="InvalidOperationException">The journal belongs to a different sweep (seed, space, tuner, pruner, task or metric); the message names the difference.</exception>
    public static (SweepJournal Journal, List<SweepTrial> Trials) Open(string path, SearchSpace space, SweepOptions options)
    {
        var header = new JournalHeader(1, options.Seed, space.ToString(), options.Tuner, options.Pruner, options.Task, options.Metric, options.CrossValidationFolds);
        var journal = new SweepJournal(Path.GetFullPath(path), JsonSerializer.Serialize(header, Json));
        var trials = new List<SweepTrial>();
        if (!File.Exists(journal._path))
            return (journal, trials);

        var lines = File.ReadAllLines(journal._path).Where(l => l.Length > 0).ToArray();
        if (lines.Length == 0)
            return (journal, trials);
        var found = JsonSerializer.Deserialize<JournalHeader>(lines[0], Json)
            ?? throw new InvalidOperationException($"The sweep journal '{journal._path}' has no header line.");
        if (found != header)
            throw new InvalidOperationException($"The sweep journal '{journal._path}' belongs to a different sweep: it recorded {Describe(found)}; this sweep is {Describe(header)}. " +
                "Use another JournalPath or delete the file.");
        for (int i = 1; i < lines.Length; i++)
        {
            var record = JsonSerializer.Deserialize<JournalTrial>(lines[i], Json)
                ?? throw new InvalidOperationException($"The sweep journal '{journal._path}' has an empty trial on line {i + 1}.");
            if (record.Index != i - 1 || record.Coordinates.Length != space.Count)
                throw new InvalidOperationException($"The sweep journal '{journal._path}' is inconsistent on line {i + 1}: expected trial {i - 1} with {space.Count} parameters, " +
                    $"found trial {record.Index} with {record.Coordinates.Length}.");
            trials.Add(record.ToTrial(space));
            journal._lines.Add(lines[i]);
        }
        return (journal, trials);
    }

    /// <summary>Adds a finished trial and rewrites the journal atomically.</summary>
    public void Append(SweepTrial trial)
    {
        _lines.Add(JsonSerializer.Serialize(JournalTrial.From(trial), Json));
        var text = new StringBuilder().AppendLine(_header);
        foreach (string line in _lines)
            text.AppendLine(line);
        byte[] bytes = Encoding.UTF8.GetBytes(text.ToString());
        AtomicFile.Write(_path, stream => stream.Write(bytes), "the sweep journal");
    }

    private static string Describe(JournalHeader h) =>
        $"seed {h.Seed}, space [{h.Space}], tuner {h.Tuner}, pruner {h.Pruner}, task {h.Task}, metric {h.Metric}, {h.CrossValidationFolds} folds";

    private sealed record JournalHeader(int Version, int Seed, string Space, SweepTuner Tuner, SweepPruner Pruner, SweepTask Task, SweepMetric Metric, int CrossValidationFolds);

    private sealed record JournalTrial(int Index, double[] Coordinates, TrialStatus Status, double Metric, SweepResource Resource, double[] Intermediate,
        string IntermediateName, bool IntermediateHigherIsBetter, double ResourceUsed, string? Error, double DurationSeconds)
    {
        public static JournalTrial From(SweepTrial t) => new(t.Index, t.Parameters.Coordinates, t.Status, t.Metric, t.Resource, t.IntermediateValues.ToArray(),
            t.IntermediateMetricName, t.IntermediateHigherIsBetter, t.ResourceUsed, t.Error, t.Duration.TotalSeconds);

        public SweepTrial ToTrial(SearchSpace space)
        {
            var trial = new SweepTrial(Index, new SweepParameters(space, Coordinates))
            {
                Status = Status,
                Metric = Metric,
                Resource = Resource,
                IntermediateMetricName = IntermediateName,
                IntermediateHigherIsBetter = IntermediateHigherIsBetter,
                ResourceUsed = ResourceUsed,
                Error = Error,
                Duration = TimeSpan.FromSeconds(DurationSeconds),
            };
            trial.IntermediateValues.AddRange(Intermediate);
            return trial;
        }
    }
}
