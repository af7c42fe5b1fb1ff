namespace MLExtensions.Core;

/// <summary>
/// A callback that every <see cref="TrainingLoop"/> run in the current asynchronous flow adds after the options'
/// callbacks. It lets a caller that does not build the trainers itself (a hyperparameter sweep fitting a user's
/// pipeline factory) watch and stop the networks fitted inside that pipeline without changing the factory.
/// </summary>
/// <remarks>
/// Scoped with <see cref="AsyncLocal{T}"/>, so concurrent sweeps or trainings on other threads never see each
/// other's observer. Dispose the scope to remove it (scopes nest: the previous observer comes back).
/// </remarks>
internal static class AmbientTrainingCallback
{
    private static readonly AsyncLocal<ITrainingCallback?> CurrentCallback = new();

    /// <summary>The observer of the current flow, if any.</summary>
    public static ITrainingCallback? Current => CurrentCallback.Value;

    /// <summary>Makes <paramref name="callback"/> the observer of every loop run in this flow until the scope is disposed.</summary>
    public static IDisposable Use(ITrainingCallback callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var previous = CurrentCallback.Value;
        CurrentCallback.Value = callback;
        return new Scope(previous);
    }

    private sealed class Scope : IDisposable
    {
        private readonly ITrainingCallback? _previous;
        private bool _disposed;

        public Scope(ITrainingCallback? previous) => _previous = previous;

        public void Dispose()
        {
            if (_disposed)
                return;
            _disposed = true;
            CurrentCallback.Value = _previous;
        }
    }
}
