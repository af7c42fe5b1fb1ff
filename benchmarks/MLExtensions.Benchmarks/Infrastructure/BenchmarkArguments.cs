using System.Globalization;

namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>An option a benchmark accepts: <c>--name value</c>, or <c>--name</c> alone for a flag.</summary>
/// <param name="Name">The name without the leading dashes.</param>
/// <param name="ValueName">What the value is, for the usage text ("N", "folder"); null for a flag.</param>
/// <param name="Description">What the option does, including its default.</param>
internal sealed record BenchmarkOption(string Name, string? ValueName, string Description)
{
    /// <summary>Whether the option takes no value.</summary>
    public bool IsFlag => ValueName is null;
}

/// <summary>The options given to one benchmark, checked against what it declared.</summary>
internal sealed class BenchmarkArguments
{
    private readonly Dictionary<string, string?> _values;

    private BenchmarkArguments(Dictionary<string, string?> values) => _values = values;

    /// <summary>Parses <paramref name="args"/> (everything after the benchmark name).</summary>
    /// <exception cref="ArgumentException">An option is unknown, repeated or lacks its value; the message names it.</exception>
    public static BenchmarkArguments Parse(IReadOnlyList<string> args, IReadOnlyList<BenchmarkOption> options)
    {
        var known = options.ToDictionary(o => o.Name, StringComparer.Ordinal);
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || !known.TryGetValue(arg[2..], out var option))
                throw new ArgumentException($"Unknown option '{arg}'.");
            if (values.ContainsKey(option.Name))
                throw new ArgumentException($"Option '--{option.Name}' is given twice.");
            if (option.IsFlag)
            {
                values[option.Name] = null;
                continue;
            }
            if (i + 1 >= args.Count)
                throw new ArgumentException($"Option '--{option.Name}' needs a value ({option.ValueName}).");
            values[option.Name] = args[++i];
        }
        return new BenchmarkArguments(values);
    }

    /// <summary>Whether flag <paramref name="name"/> was given.</summary>
    public bool Flag(string name) => _values.ContainsKey(name);

    /// <summary>The value of <paramref name="name"/>, or null when it was not given.</summary>
    public string? String(string name) => _values.TryGetValue(name, out var value) ? value : null;

    /// <summary>The value of <paramref name="name"/> as an integer of at least <paramref name="minimum"/>, or <paramref name="fallback"/>.</summary>
    /// <exception cref="ArgumentException">The value is not such an integer.</exception>
    public int Int(string name, int fallback, int minimum = 1)
    {
        if (String(name) is not string text)
            return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < minimum)
            throw new ArgumentException($"Option '--{name}' must be an integer ≥ {minimum}; found '{text}'.");
        return value;
    }

    /// <summary>The value of <paramref name="name"/> as an integer of at least <paramref name="minimum"/>, or null when absent.</summary>
    /// <exception cref="ArgumentException">The value is not such an integer.</exception>
    public int? OptionalInt(string name, int minimum = 1) => String(name) is null ? null : Int(name, 0, minimum);

    /// <summary>The value of <paramref name="name"/> as a positive number, or null when absent.</summary>
    /// <exception cref="ArgumentException">The value is not a positive number.</exception>
    public double? OptionalPositiveDouble(string name)
    {
        if (String(name) is not string text)
            return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value > 0))
            throw new ArgumentException($"Option '--{name}' must be a positive number; found '{text}'.");
        return value;
    }

    /// <summary>The value of <paramref name="name"/> as a number ≥ 0, or null when absent.</summary>
    /// <exception cref="ArgumentException">The value is not such a number.</exception>
    public double? OptionalNonNegativeDouble(string name)
    {
        if (String(name) is not string text)
            return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value >= 0))
            throw new ArgumentException($"Option '--{name}' must be a number ≥ 0; found '{text}'.");
        return value;
    }

    /// <summary>The value of <paramref name="name"/> parsed as enum <typeparamref name="TEnum"/> (case-insensitive), or <paramref name="fallback"/>.</summary>
    /// <exception cref="ArgumentException">The value is not one of the enum's names.</exception>
    public TEnum Enum<TEnum>(string name, TEnum fallback) where TEnum : struct, System.Enum
    {
        if (String(name) is not string text)
            return fallback;
        if (!System.Enum.TryParse(text, ignoreCase: true, out TEnum value) || !System.Enum.IsDefined(value) || int.TryParse(text, out _))
            throw new ArgumentException($"Option '--{name}' must be one of {string.Join(", ", System.Enum.GetNames<TEnum>().Select(n => n.ToLowerInvariant()))}; found '{text}'.");
        return value;
    }
}
