using System.Globalization;

namespace MLExtensions.Sweeps;

/// <summary>The kind of values a <see cref="SearchRange"/> holds.</summary>
public enum SearchRangeKind
{
    /// <summary>Real numbers drawn uniformly between the bounds.</summary>
    Uniform,

    /// <summary>Positive real numbers whose logarithm is uniform between the bounds' logarithms.</summary>
    LogUniform,

    /// <summary>Whole numbers between the bounds, both included.</summary>
    Integer,

    /// <summary>One of a list of values (numbers, strings, arrays, …), unordered.</summary>
    Choice,
}

/// <summary>
/// The values one hyperparameter may take. Create ranges with <see cref="Uniform"/>, <see cref="LogUniform"/>,
/// <see cref="Integer"/> or <see cref="Choice"/>.
/// </summary>
/// <remarks>
/// Tuners work in an internal coordinate per range: the value itself (Uniform, Integer), its natural logarithm
/// (LogUniform) or the index of the choice (Choice). That is what the sweep journal stores, so a resumed sweep
/// gets back exactly the same values.
/// </remarks>
public sealed class SearchRange
{
    private readonly object[] _values;

    private SearchRange(SearchRangeKind kind, double min, double max, object[] values)
    {
        Kind = kind;
        Min = min;
        Max = max;
        _values = values;
    }

    /// <summary>What kind of range this is.</summary>
    public SearchRangeKind Kind { get; }

    /// <summary>The lower bound (numeric ranges; 0 for a choice).</summary>
    public double Min { get; }

    /// <summary>The upper bound (numeric ranges; the last index for a choice).</summary>
    public double Max { get; }

    /// <summary>The values of a <see cref="SearchRangeKind.Choice"/>; empty for numeric ranges.</summary>
    public IReadOnlyList<object> Values => _values;

    /// <summary>Real numbers uniformly in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is not finite, or <paramref name="min"/> ≥ <paramref name="max"/>.</exception>
    public static SearchRange Uniform(double min, double max)
    {
        CheckBounds(min, max, nameof(Uniform));
        return new SearchRange(SearchRangeKind.Uniform, min, max, Array.Empty<object>());
    }

    /// <summary>Positive real numbers in [<paramref name="min"/>, <paramref name="max"/>] whose logarithm is uniform (learning rates, weight decay).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="min"/> ≤ 0, a bound is not finite, or <paramref name="min"/> ≥ <paramref name="max"/>.</exception>
    public static SearchRange LogUniform(double min, double max)
    {
        if (!(min > 0))
            throw new ArgumentOutOfRangeException(nameof(min), min, $"SearchRange.LogUniform needs min > 0 (its logarithm is sampled); found min = {Format(min)}.");
        CheckBounds(min, max, nameof(LogUniform));
        return new SearchRange(SearchRangeKind.LogUniform, min, max, Array.Empty<object>());
    }

    /// <summary>Whole numbers from <paramref name="min"/> to <paramref name="max"/>, both included.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="min"/> ≥ <paramref name="max"/>.</exception>
    public static SearchRange Integer(int min, int max)
    {
        CheckBounds(min, max, nameof(Integer));
        return new SearchRange(SearchRangeKind.Integer, min, max, Array.Empty<object>());
    }

    /// <summary>One of <paramref name="values"/> (no order is assumed between them).</summary>
    /// <exception cref="ArgumentException">No values were given, or a value is null.</exception>
    public static SearchRange Choice(params object[] values)
    {
        if (values is null || values.Length == 0)
            throw new ArgumentException("SearchRange.Choice needs at least one value; found none.", nameof(values));
        int nullIndex = Array.IndexOf(values, null);
        if (nullIndex >= 0)
            throw new ArgumentException($"SearchRange.Choice values must not be null; value {nullIndex} is null.", nameof(values));
        return new SearchRange(SearchRangeKind.Choice, 0, values.Length - 1, (object[])values.Clone());
    }

    /// <summary>Lower bound of the internal coordinate (log for LogUniform; −0.5 around integers so each gets equal width).</summary>
    internal double Low => Kind switch
    {
        SearchRangeKind.LogUniform => Math.Log(Min),
        SearchRangeKind.Integer or SearchRangeKind.Choice => Min - 0.5,
        _ => Min,
    };

    /// <summary>Upper bound of the internal coordinate.</summary>
    internal double High => Kind switch
    {
        SearchRangeKind.LogUniform => Math.Log(Max),
        SearchRangeKind.Integer or SearchRangeKind.Choice => Max + 0.5,
        _ => Max,
    };

    /// <summary>Whether the internal coordinate is a category index (no distance between values).</summary>
    internal bool IsCategorical => Kind == SearchRangeKind.Choice;

    /// <summary>Snaps an internal coordinate to a valid one (rounds integers and indices, clamps to the bounds).</summary>
    internal double Snap(double internalValue) => Kind switch
    {
        SearchRangeKind.Integer or SearchRangeKind.Choice => Math.Clamp(Math.Round(internalValue, MidpointRounding.AwayFromZero), Min, Max),
        _ => Math.Clamp(internalValue, Low, High),
    };

    /// <summary>The user-facing value of an internal coordinate.</summary>
    internal object ToValue(double internalValue) => Kind switch
    {
        SearchRangeKind.Uniform => internalValue,
        SearchRangeKind.LogUniform => Math.Clamp(Math.Exp(internalValue), Min, Max),
        SearchRangeKind.Integer => (int)internalValue,
        _ => _values[(int)internalValue],
    };

    /// <summary>A short description, e.g. <c>LogUniform(1E-05, 0.1)</c>, also used to check that a journal belongs to this space.</summary>
    public override string ToString() => Kind == SearchRangeKind.Choice
        ? $"Choice({string.Join(", ", _values.Select(FormatValue))})"
        : $"{Kind}({Format(Min)}, {Format(Max)})";

    internal static string FormatValue(object value) => value switch
    {
        double d => Format(d),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e and not string => "[" + string.Join(", ", e.Cast<object>().Select(FormatValue)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static void CheckBounds(double min, double max, string kind)
    {
        if (!double.IsFinite(min))
            throw new ArgumentOutOfRangeException(nameof(min), min, $"SearchRange.{kind} needs a finite min; found {Format(min)}.");
        if (!double.IsFinite(max))
            throw new ArgumentOutOfRangeException(nameof(max), max, $"SearchRange.{kind} needs a finite max; found {Format(max)}.");
        if (min >= max)
            throw new ArgumentOutOfRangeException(nameof(min), min, $"SearchRange.{kind} needs min < max; found min = {Format(min)}, max = {Format(max)}.");
    }
}
