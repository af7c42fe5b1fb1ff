using System.Collections;

namespace MLExtensions.Sweeps;

/// <summary>
/// The hyperparameters a sweep explores, by name. Add ranges with <see cref="Add"/> (calls chain) or a
/// collection initializer: <c>new SearchSpace { { "LearningRate", SearchRange.LogUniform(1e-4, 1e-1) } }</c>.
/// </summary>
public sealed class SearchSpace : IEnumerable<KeyValuePair<string, SearchRange>>
{
    private readonly List<KeyValuePair<string, SearchRange>> _ranges = new();

    /// <summary>Number of parameters.</summary>
    public int Count => _ranges.Count;

    /// <summary>The range of <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No parameter has that name.</exception>
    public SearchRange this[string name] => _ranges.FirstOrDefault(r => r.Key == name).Value
        ?? throw new KeyNotFoundException($"The search space has no parameter '{name}'. Parameters: {string.Join(", ", Names)}.");

    /// <summary>Parameter names in the order they were added.</summary>
    public IReadOnlyList<string> Names => _ranges.Select(r => r.Key).ToList();

    /// <summary>Adds a parameter and returns this space, so calls chain.</summary>
    /// <exception cref="ArgumentException">The name is empty or already used.</exception>
    public SearchSpace Add(string name, SearchRange range)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("A search-space parameter needs a name; found an empty name.", nameof(name));
        ArgumentNullException.ThrowIfNull(range);
        if (_ranges.Any(r => r.Key == name))
            throw new ArgumentException($"The search space already has a parameter '{name}'.", nameof(name));
        _ranges.Add(new(name, range));
        return this;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, SearchRange>> GetEnumerator() => _ranges.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One line per parameter, e.g. <c>LearningRate: LogUniform(0.0001, 0.1)</c>; a journal records it to check it resumes the same space.</summary>
    public override string ToString() => string.Join("; ", _ranges.Select(r => $"{r.Key}: {r.Value}"));

    /// <summary>The ranges in order.</summary>
    internal SearchRange[] Ranges => _ranges.Select(r => r.Value).ToArray();
}
