using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;

namespace MLExtensions.WebApi;

/// <summary>
/// One load of the model file: the fitted model and a pool of prediction engines over it.
/// Requests lease it; after a reload it is retired and disposed when its last lease ends, so a request in flight keeps
/// the model it started with and never sees a disposed one.
/// </summary>
internal sealed class ModelGeneration<TInput, TPrediction> : IDisposable
    where TInput : class
    where TPrediction : class, new()
{
    private readonly ObjectPool<PredictionEngine<TInput, TPrediction>> _engines;
    private int _leases = 1;   // the pool's own reference, released by Retire

    public ModelGeneration(MLContext ml, ITransformer model, DataViewSchema inputSchema, int version, string path, int maxPooledEngines)
    {
        Model = model;
        InputSchema = inputSchema;
        Version = version;
        Path = path;
        LoadedAt = DateTimeOffset.UtcNow;
        // PredictionEngine is not thread-safe; each concurrent request needs its own. The pool must never dispose an
        // engine: ML.NET's PredictionEngine.Dispose disposes the model it was made from, which every other engine shares.
        // DefaultObjectPool (unlike the provider's DisposableObjectPool) just lets engines it does not keep go to the GC.
        _engines = new DefaultObjectPool<PredictionEngine<TInput, TPrediction>>(new EnginePolicy(ml, model, inputSchema), maxPooledEngines);
    }

    public ITransformer Model { get; }

    public DataViewSchema InputSchema { get; }

    /// <summary>1 for the model loaded at start-up, +1 per reload.</summary>
    public int Version { get; }

    public string Path { get; }

    public DateTimeOffset LoadedAt { get; }

    /// <summary>Takes a lease; false when the generation has already been retired and released.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            int current = Volatile.Read(ref _leases);
            if (current == 0)
                return false;
            if (Interlocked.CompareExchange(ref _leases, current + 1, current) == current)
                return true;
        }
    }

    public PredictionEngine<TInput, TPrediction> Rent() => _engines.Get();

    public void Return(PredictionEngine<TInput, TPrediction> engine) => _engines.Return(engine);

    /// <summary>Ends a lease; the last one disposes the engines and the model.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
            Dispose();
    }

    /// <summary>Called once when a newer generation replaces this one.</summary>
    public void Retire() => Release();

    /// <summary>Disposes the model (its native memory) once; the engines over it are left to the GC, see the constructor.</summary>
    public void Dispose() => (Model as IDisposable)?.Dispose();

    private sealed class EnginePolicy : PooledObjectPolicy<PredictionEngine<TInput, TPrediction>>
    {
        private readonly MLContext _ml;
        private readonly ITransformer _model;
        private readonly DataViewSchema _inputSchema;

        public EnginePolicy(MLContext ml, ITransformer model, DataViewSchema inputSchema)
        {
            _ml = ml;
            _model = model;
            _inputSchema = inputSchema;
        }

        public override PredictionEngine<TInput, TPrediction> Create() =>
            _ml.Model.CreatePredictionEngine<TInput, TPrediction>(_model, inputSchemaDefinition: null);

        public override bool Return(PredictionEngine<TInput, TPrediction> engine) => true;
    }
}
