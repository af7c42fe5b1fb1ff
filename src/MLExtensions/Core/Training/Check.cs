namespace MLExtensions.Core;

/// <summary>Argument checks whose messages name the option, the valid range and the value found.</summary>
internal static class Check
{
    public static void Positive(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number > 0; found {value}.");
    }

    public static void Positive(int value, string name)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be > 0; found {value}.");
    }

    public static void InRange(double value, double min, double max, string name, string range)
    {
        if (double.IsNaN(value) || value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be {range}; found {value}.");
    }

    public static void NotEmpty(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value))
            throw new ArgumentException($"{name} must name a column; found an empty name.", name);
    }
}
