using System.Globalization;

namespace MLExtensions.Sweeps;

/// <summary>The hyperparameter values of one trial, read by the pipeline factory with <see cref="Get{T}"/>.</summary>
public sealed class SweepParameters
{
    private readonly SearchSpace _space;

    internal SweepParameters(SearchSpace space, double[] coordinates)
    {
        _space = space;
        Coordinates = coordinates;
    }

    /// <summary>The tuner's internal coordinates (see <see cref="SearchRange"/>), one per parameter in space order.</summary>
    internal double[] Coordinates { get; }

    /// <summary>Parameter names in the search space's order.</summary>
    public IReadOnlyList<string> Names => _space.Names;

    /// <summary>The value of <paramref name="name"/> as a <typeparamref name="T"/>. Numeric conversions are allowed (an Integer range read as <c>int</c>, <c>long</c> or <c>double</c>; a Uniform read as <c>float</c>).</summary>
    /// <exception cref="KeyNotFoundException">No parameter has that name.</exception>
    /// <exception cref="InvalidCastException">The value cannot be converted to <typeparamref name="T"/>.</exception>
    public T Get<T>(string name)
    {
        object value = this[name];
        if (value is T typed)
            return typed;
        if (value is IConvertible && IsNumeric(typeof(T)) && IsNumeric(value.GetType()))
            return (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), CultureInfo.InvariantCulture);
        throw new InvalidCastException($"Sweep parameter '{name}' is a {value.GetType().Name} ({SearchRange.FormatValue(value)}); it cannot be read as {typeof(T).Name}.");
    }

    /// <summary>The value of <paramref name="name"/> (double for Uniform/LogUniform, int for Integer, the chosen object for Choice).</summary>
    /// <exception cref="KeyNotFoundException">No parameter has that name.</exception>
    public object this[string name]
    {
        get
        {
            var names = _space.Names;
            for (int i = 0; i < names.Count; i++)
                if (names[i] == name)
                    return _space.Ranges[i].ToValue(Coordinates[i]);
            throw new KeyNotFoundException($"The sweep has no parameter '{name}'. Parameters: {string.Join(", ", names)}.");
        }
    }

    /// <summary>The values by name, in the search space's order.</summary>
    public IReadOnlyDictionary<string, object> ToDictionary() => Names.ToDictionary(n => n, n => this[n]);

    /// <summary>E.g. <c>LearningRate=0.003, Width=64</c>.</summary>
    public override string ToString() => string.Join(", ", Names.Select(n => $"{n}={FormatShort(this[n])}"));

    internal static string FormatShort(object value) => value is double d ? d.ToString("G4", CultureInfo.InvariantCulture) : SearchRange.FormatValue(value);

    private static bool IsNumeric(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return Type.GetTypeCode(type) is TypeCode.Byte or TypeCode.SByte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32
            or TypeCode.Int64 or TypeCode.UInt64 or TypeCode.Single or TypeCode.Double or TypeCode.Decimal;
    }
}
