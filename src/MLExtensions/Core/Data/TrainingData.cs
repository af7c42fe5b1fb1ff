using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace MLExtensions.Core;

/// <summary>
/// Turns the data given to <c>Fit</c> into training and validation batch sources: holds out a validation
/// split when no validation data was given, and keeps rows in memory or streams them per <see cref="DataCaching"/>.
/// </summary>
public sealed class TrainingData : IDisposable
{
    private readonly List<IDisposable> _owned = new();

    private TrainingData()
    {
    }

    /// <summary>Training batches.</summary>
    public IBatchSource Train { get; private set; } = null!;

    /// <summary>Validation batches, or null when the run has none.</summary>
    public IBatchSource? Validation { get; private set; }

    /// <summary>Rows the training source holds, when known.</summary>
    public long? TrainingRows => Train.RowCount;

    /// <summary>Wraps sources a trainer built itself; <paramref name="owned"/> are disposed with this object.</summary>
    public static TrainingData FromSources(IBatchSource train, IBatchSource? validation, params IDisposable[] owned)
    {
        var result = new TrainingData { Train = train, Validation = validation };
        result._owned.AddRange(owned);
        return result;
    }

    /// <summary>
    /// The training and validation views: the given validation data, or a seeded hold-out of
    /// <see cref="NetworkTrainerOptions.ValidationFraction"/> of <paramref name="data"/> (lazy, nothing is copied).
    /// </summary>
    public static (IDataView Train, IDataView? Validation) Split(IHostEnvironment env, IDataView data, NetworkTrainerOptions options, int seed)
    {
        if (options.ValidationData is not null)
            return (data, options.ValidationData);
        if (options.ValidationFraction <= 0)
            return (data, null);
        var split = new DataOperationsCatalog(env).TrainTestSplit(data, options.ValidationFraction, seed: seed);
        return (split.TrainSet, split.TestSet);
    }

    /// <summary>Prepares the sources.</summary>
    /// <param name="env">The environment.</param>
    /// <param name="data">The data given to <c>Fit</c>.</param>
    /// <param name="options">The training options (validation, caching, seed).</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="readerFor">Creates the row reader for a schema (validates it).</param>
    /// <param name="channel">Receives what was decided and what was skipped.</param>
    /// <exception cref="InvalidOperationException">The training data has no usable rows.</exception>
    public static TrainingData Prepare(IHostEnvironment env, IDataView data, NetworkTrainerOptions options, int seed,
        Func<DataViewSchema, IRowReaderFactory> readerFor, IChannel channel)
    {
        var result = new TrainingData();
        readerFor(data.Schema); // validates the columns before anything is read
        if (options.ValidationData is not null)
            readerFor(options.ValidationData.Schema); // same checks, so a bad validation set fails before training starts
        var (trainView, validationView) = Split(env, data, options, seed);

        var reader = readerFor(trainView.Schema);
        long? rows = trainView.GetRowCount();
        bool inMemory = options.DataCaching switch
        {
            DataCaching.Memory => true,
            DataCaching.Streaming => false,
            _ => (rows ?? CountRows(trainView)) * (reader.FeatureSize + 1L) * sizeof(float) <= DataCachingLimits.MemoryLimitBytes,
        };

        result.Train = result.CreateSource(env, trainView, reader, inMemory, options.CancellationToken, channel, "training");
        if (result.Train.RowCount == 0)
            throw new InvalidOperationException("The training data is empty: no rows with a label were found.");
        if (validationView is not null)
        {
            result.Validation = result.CreateSource(env, validationView, readerFor(validationView.Schema), inMemory, options.CancellationToken, channel, "validation");
            if (result.Validation.RowCount == 0)
                result.Validation = null;
        }
        channel.Info(MessageSensitivity.None, "Training data {0} ({1} rows); validation: {2}.",
            inMemory ? "held in memory" : "streamed through cursors", result.Train.RowCount?.ToString() ?? "unknown",
            result.Validation is null ? "none" : $"{result.Validation.RowCount?.ToString() ?? "unknown"} rows" + (options.ValidationData is null ? $" held out ({options.ValidationFraction:P0})" : ""));
        return result;
    }

    private IBatchSource CreateSource(IHostEnvironment env, IDataView view, IRowReaderFactory reader, bool inMemory, CancellationToken cancellation, IChannel channel, string role)
    {
        if (!inMemory)
            return new StreamingBatchSource(env, view, reader, cancellation);
        var source = InMemoryBatchSource.Read(view, reader, cancellation);
        _owned.Add(source);
        var s = source.Statistics;
        if (s.MissingLabels > 0)
            channel.Warning(MessageSensitivity.None, "Skipped {0} {1} rows with a missing label.", s.MissingLabels, role);
        if (s.InvalidRows > 0)
            channel.Warning(MessageSensitivity.None, "Skipped {0} {1} rows {2}.", s.InvalidRows, role, reader.SkippedRowDescription);
        return source;
    }

    /// <summary>Counts rows with a cursor that activates no column (cheap for most sources).</summary>
    internal static long CountRows(IDataView view)
    {
        long count = 0;
        using var cursor = view.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext())
            count++;
        return count;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var d in _owned)
            d.Dispose();
    }
}
