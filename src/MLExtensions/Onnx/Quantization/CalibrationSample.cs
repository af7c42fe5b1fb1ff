using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MLExtensions.Onnx;

/// <summary>
/// One set of model inputs for calibration: a tensor per graph input, by name. Holds plain arrays (no native memory),
/// so samples can be built lazily and dropped after use.
/// </summary>
public sealed class CalibrationSample
{
    private readonly Dictionary<string, Entry> _tensors = new(StringComparer.Ordinal);

    internal sealed record Entry(TensorElementType ElementType, long[] Shape, Array Values);

    /// <summary>The input names given, in insertion order.</summary>
    public IReadOnlyCollection<string> Names => _tensors.Keys;

    /// <summary>Adds a float32 input.</summary>
    /// <param name="name">The graph input's name.</param>
    /// <param name="values">The values in row-major order.</param>
    /// <param name="shape">The dimensions; their product must equal the number of values.</param>
    /// <returns>This sample, for chaining.</returns>
    public CalibrationSample Add(string name, float[] values, params long[] shape) => Add(name, TensorElementType.Float, values, shape);

    /// <summary>Adds an int64 input (token ids, masks).</summary>
    /// <inheritdoc cref="Add(string, float[], long[])"/>
    public CalibrationSample Add(string name, long[] values, params long[] shape) => Add(name, TensorElementType.Int64, values, shape);

    /// <summary>Adds an int32 input.</summary>
    /// <inheritdoc cref="Add(string, float[], long[])"/>
    public CalibrationSample Add(string name, int[] values, params long[] shape) => Add(name, TensorElementType.Int32, values, shape);

    internal IReadOnlyDictionary<string, Entry> Tensors => _tensors;

    private CalibrationSample Add(string name, TensorElementType type, Array values, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(shape);
        long count = shape.Aggregate(1L, (a, d) => d < 0 ? throw new ArgumentOutOfRangeException(nameof(shape), $"Input '{name}' has a negative dimension in [{string.Join(", ", shape)}].") : checked(a * d));
        if (count != values.LongLength)
            throw new ArgumentException($"Input '{name}': shape [{string.Join(", ", shape)}] holds {count} values but {values.LongLength} were given.", nameof(values));
        if (!_tensors.TryAdd(name, new Entry(type, shape.ToArray(), values)))
            throw new ArgumentException($"Input '{name}' was already added to this sample.", nameof(name));
        return this;
    }

    /// <summary>
    /// Checks the sample against the model's inputs (names, element types, ranks and fixed dimensions) and creates the
    /// ONNX Runtime values. The caller disposes them.
    /// </summary>
    internal Dictionary<string, OrtValue> ToOrtValues(IReadOnlyDictionary<string, NodeMetadata> inputs, int index)
    {
        string where = $"Calibration sample {index}";
        foreach (string name in _tensors.Keys)
        {
            if (!inputs.ContainsKey(name))
                throw new ArgumentException($"{where} has an input '{name}' that the model does not have; the model's inputs are: {string.Join(", ", inputs.Keys)}.");
        }
        var values = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, meta) in inputs)
            {
                if (!_tensors.TryGetValue(name, out var entry))
                    throw new ArgumentException($"{where} has no value for the model input '{name}' (expected {meta.ElementDataType} [{FormatDims(meta.Dimensions)}]); given: {string.Join(", ", _tensors.Keys)}.");
                if (entry.ElementType != meta.ElementDataType)
                    throw new ArgumentException($"{where}, input '{name}': expected element type {meta.ElementDataType}, found {entry.ElementType}.");
                var dims = meta.Dimensions;
                bool shapeMatches = dims.Length == entry.Shape.Length && dims.Zip(entry.Shape).All(p => p.First < 0 || p.First == p.Second);
                if (!shapeMatches)
                    throw new ArgumentException($"{where}, input '{name}': expected shape [{FormatDims(dims)}] (-1 = any), found [{string.Join(", ", entry.Shape)}].");
                values[name] = entry.Values switch
                {
                    float[] f => OrtValue.CreateTensorValueFromMemory(f, entry.Shape),
                    long[] l => OrtValue.CreateTensorValueFromMemory(l, entry.Shape),
                    int[] i => OrtValue.CreateTensorValueFromMemory(i, entry.Shape),
                    _ => throw new InvalidOperationException("Unexpected calibration array type."),
                };
            }
            return values;
        }
        catch
        {
            foreach (var v in values.Values)
                v.Dispose();
            throw;
        }
    }

    private static string FormatDims(int[] dims) => string.Join(", ", dims);
}
