namespace MLExtensions.Tests.Support;

/// <summary>An IProgress that runs the handler on the reporting thread (Progress&lt;T&gt; posts asynchronously).</summary>
public sealed class SynchronousProgress<T> : IProgress<T>
{
    private readonly Action<T> _handler;

    public SynchronousProgress(Action<T> handler) => _handler = handler;

    public List<T> Reports { get; } = new();

    public void Report(T value)
    {
        Reports.Add(value);
        _handler(value);
    }
}
