namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>Summary statistics used by the reports.</summary>
internal static class Statistics
{
    /// <summary>The median of <paramref name="values"/> (mean of the two middle values for an even count).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="values"/> is empty.</exception>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
            throw new InvalidOperationException("The median of no values is undefined.");
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
