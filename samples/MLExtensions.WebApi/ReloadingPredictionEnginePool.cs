using Microsoft.Extensions.Options;
using Microsoft.ML;

namespace MLExtensions.WebApi;

/// <summary>
/// Thread-safe prediction over a model file that may be replaced while the service runs.
/// </summary>
/// <remarks>
/// <para>The members mirror Microsoft.Extensions.ML's <c>PredictionEnginePool&lt;TData, TPrediction&gt;</c>
/// (<see cref="Predict(TInput)"/>, <see cref="GetPredictionEngine"/>, <see cref="ReturnPredictionEngine"/>) and the endpoints use
/// only <see cref="IModelPredictor{TInput, TPrediction}"/>, so a team that has that package can register its pool behind
/// the same interface instead (docs/deployment.md shows the two lines).</para>
/// <para>Reload: a <see cref="FileSystemWatcher"/> on the model's folder schedules a reload once the file has been quiet for
/// <see cref="ServingOptions.ReloadDelay"/>. The new model is loaded and checked completely before it replaces the old
/// one; a file that does not load (still being written, truncated, from another library version) leaves the old model
/// serving and is tried again at its next change. Requests in flight finish on the model they started with.</para>
/// </remarks>
public sealed class ReloadingPredictionEnginePool<TInput, TPrediction> : IModelPredictor<TInput, TPrediction>, IDisposable
    where TInput : class
    where TPrediction : class, new()
{
    private readonly MLContext _ml = new();
    private readonly ServingOptions _options;
    private readonly Action<ITransformer, DataViewSchema> _validate;
    private readonly ILogger _logger;
    private readonly FileSystemWatcher _watcher;
    private readonly Timer _reloadTimer;
    private readonly object _reloadGate = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<PredictionEngine<TInput, TPrediction>, ModelGeneration<TInput, TPrediction>> _owners = new();
    private ModelGeneration<TInput, TPrediction> _current;
    private (DateTime WriteTime, long Length) _loadedStamp;
    private bool _disposed;

    /// <summary>Loads the model file and starts watching it.</summary>
    /// <param name="options">The serving settings (model path, pool size, reload delay).</param>
    /// <param name="validate">Checks a loaded model (e.g. its schema) and throws with a clear message when it does not fit.</param>
    /// <param name="logger">Receives reload messages.</param>
    /// <exception cref="ModelFileException">The model file is missing, does not load, or does not fit.</exception>
    public ReloadingPredictionEnginePool(IOptions<ServingOptions> options, Action<ITransformer, DataViewSchema> validate, ILogger<ReloadingPredictionEnginePool<TInput, TPrediction>> logger)
    {
        _options = options.Value;
        _validate = validate;
        _logger = logger;
        string path = System.IO.Path.GetFullPath(_options.ModelPath);
        _current = Load(path, version: 1);
        _loadedStamp = Stamp(path);
        _logger.LogInformation("Serving {Path} (model version 1)", path);

        _reloadTimer = new Timer(_ => ReloadIfChanged(), null, Timeout.Infinite, Timeout.Infinite);
        _watcher = new FileSystemWatcher(System.IO.Path.GetDirectoryName(path)!, System.IO.Path.GetFileName(path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        _watcher.Changed += (_, _) => ScheduleReload();
        _watcher.Created += (_, _) => ScheduleReload();
        _watcher.Renamed += (_, _) => ScheduleReload();
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>The full path of the served model file.</summary>
    public string ModelPath => _current.Path;

    /// <summary>Which load of the file is serving: 1 at start-up, +1 per successful reload.</summary>
    public int ModelVersion => Volatile.Read(ref _current).Version;

    /// <summary>When the serving model was loaded.</summary>
    public DateTimeOffset LoadedAt => Volatile.Read(ref _current).LoadedAt;

    /// <summary>The last reload that failed, if the newest file on disk is not the one serving.</summary>
    public string? LastReloadError { get; private set; }

    /// <summary>Raised after a new model has replaced the old one (argument: the new model version).</summary>
    public event Action<int>? Reloaded;

    /// <inheritdoc/>
    public TPrediction Predict(TInput example) => Predict(example, out _);

    /// <summary>Predicts one example and says which model version answered.</summary>
    public TPrediction Predict(TInput example, out int modelVersion)
    {
        var generation = Lease();
        try
        {
            modelVersion = generation.Version;
            var engine = generation.Rent();
            try
            {
                return engine.Predict(example);
            }
            finally
            {
                generation.Return(engine);
            }
        }
        finally
        {
            generation.Release();
        }
    }

    /// <summary>Rents an engine of the serving model; give it back with <see cref="ReturnPredictionEngine"/>.</summary>
    public PredictionEngine<TInput, TPrediction> GetPredictionEngine()
    {
        var generation = Lease();
        var engine = generation.Rent();
        _owners.AddOrUpdate(engine, generation);
        return engine;
    }

    /// <summary>Returns an engine from <see cref="GetPredictionEngine"/> to the pool of the model it came from.</summary>
    public void ReturnPredictionEngine(PredictionEngine<TInput, TPrediction> engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        if (!_owners.TryGetValue(engine, out var generation))
            throw new ArgumentException("This engine was not rented from this pool, or was returned already.", nameof(engine));
        _owners.Remove(engine);
        generation.Return(engine);
        generation.Release();
    }

    /// <summary>Reloads now if the file differs from the serving one (the watcher calls this after the quiet delay).</summary>
    /// <returns>True when a new model replaced the old one.</returns>
    public bool ReloadIfChanged()
    {
        lock (_reloadGate)
        {
            if (_disposed)
                return false;
            string path = _current.Path;
            var stamp = Stamp(path);
            if (stamp == _loadedStamp || stamp.Length == 0)
                return false;
            ModelGeneration<TInput, TPrediction> next;
            try
            {
                next = Load(path, _current.Version + 1);
            }
            catch (ModelFileException e)
            {
                // Typically a file caught half-written; its last write raises another change event.
                LastReloadError = e.Message;
                _logger.LogWarning("Keeping model version {Version}: {Error}", _current.Version, e.Message);
                return false;
            }
            var old = Interlocked.Exchange(ref _current, next);
            _loadedStamp = stamp;
            LastReloadError = null;
            old.Retire();
            _logger.LogInformation("Reloaded {Path} (model version {Version})", path, next.Version);
            Reloaded?.Invoke(next.Version);
            return true;
        }
    }

    /// <summary>Stops watching and disposes the serving model once its requests have finished.</summary>
    public void Dispose()
    {
        lock (_reloadGate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _watcher.Dispose();
            _reloadTimer.Dispose();
            _current.Retire();
        }
    }

    private void ScheduleReload() => _reloadTimer.Change(_options.ReloadDelay, Timeout.InfiniteTimeSpan);

    private ModelGeneration<TInput, TPrediction> Lease()
    {
        while (true)
        {
            var generation = Volatile.Read(ref _current);
            if (generation.TryAcquire())
                return generation;
            // Retired and released between the read and the lease: the field already holds its successor.
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
    }

    private ModelGeneration<TInput, TPrediction> Load(string path, int version)
    {
        if (!File.Exists(path))
            throw new ModelFileException(path, "the file does not exist. Train one with `dotnet run --project samples/MLExtensions.WebApi -- train <path>`, or set Serving:ModelPath.");
        ITransformer model;
        DataViewSchema inputSchema;
        try
        {
            model = _ml.Model.Load(path, out inputSchema);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ModelFileException(path, "it is not a loadable ML.NET model (truncated, corrupted, or saved by another version of MLExtensions or ML.NET): " + Innermost(e).Message, e);
        }
        try
        {
            _validate(model, inputSchema);
            var generation = new ModelGeneration<TInput, TPrediction>(_ml, model, inputSchema, version, path, _options.MaxPooledEngines);
            // Build one engine now, so a model that cannot serve these row types fails here and not in a request.
            generation.Return(generation.Rent());
            return generation;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            (model as IDisposable)?.Dispose();
            throw e as ModelFileException ?? new ModelFileException(path, Innermost(e).Message, e);
        }
    }

    private static (DateTime WriteTime, long Length) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (default, 0);
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e;
    }
}

/// <summary>Predicts one example; what the endpoints depend on, so that any pool (this sample's or
/// Microsoft.Extensions.ML's <c>PredictionEnginePool</c>) can serve them.</summary>
/// <typeparam name="TInput">The input row type.</typeparam>
/// <typeparam name="TPrediction">The output row type.</typeparam>
public interface IModelPredictor<in TInput, out TPrediction>
    where TInput : class
    where TPrediction : class, new()
{
    /// <summary>Predicts one example; safe to call from many threads at once.</summary>
    TPrediction Predict(TInput example);
}

/// <summary>A model file that cannot be served; the message names the file and the reason.</summary>
public sealed class ModelFileException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public ModelFileException(string path, string reason, Exception? inner = null)
        : base($"Cannot serve the model file '{path}': {reason}", inner)
    {
        Path = path;
    }

    /// <summary>The model file.</summary>
    public string Path { get; }
}
