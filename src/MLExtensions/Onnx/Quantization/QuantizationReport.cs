using System.Text;

namespace MLExtensions.Onnx;

/// <summary>A node that <see cref="OnnxQuantizer"/> left in float, and why.</summary>
/// <param name="NodeName">The node's name (or its first output's name when the node has none).</param>
/// <param name="OperatorType">The node's operator type.</param>
/// <param name="Reason">Why it was not quantized.</param>
public sealed record SkippedNode(string NodeName, string OperatorType, string Reason);

/// <summary>What a quantization run did: sizes, nodes converted per operator type, nodes left in float.</summary>
public sealed class QuantizationReport
{
    internal QuantizationReport(QuantizationMode mode, long floatBytes, long quantizedBytes, IReadOnlyDictionary<string, int> quantized,
        IReadOnlyList<SkippedNode> skipped, IReadOnlyDictionary<string, (float Min, float Max)> activationRanges)
    {
        Mode = mode;
        FloatModelBytes = floatBytes;
        QuantizedModelBytes = quantizedBytes;
        QuantizedNodes = quantized;
        SkippedNodes = skipped;
        ActivationRanges = activationRanges;
    }

    /// <summary>The mode that produced the model.</summary>
    public QuantizationMode Mode { get; }

    /// <summary>Size of the serialized input model.</summary>
    public long FloatModelBytes { get; }

    /// <summary>Size of the serialized output model.</summary>
    public long QuantizedModelBytes { get; }

    /// <summary><see cref="QuantizedModelBytes"/> / <see cref="FloatModelBytes"/>.</summary>
    public double SizeRatio => FloatModelBytes == 0 ? 0 : (double)QuantizedModelBytes / FloatModelBytes;

    /// <summary>Number of nodes converted, per operator type (Float16: every converted node counts under its type).</summary>
    public IReadOnlyDictionary<string, int> QuantizedNodes { get; }

    /// <summary>Nodes of a requested operator type that stayed in float, with the reason.</summary>
    public IReadOnlyList<SkippedNode> SkippedNodes { get; }

    /// <summary>Static mode: the calibrated range of every quantized activation tensor, by tensor name; empty otherwise.</summary>
    public IReadOnlyDictionary<string, (float Min, float Max)> ActivationRanges { get; }

    /// <inheritdoc />
    public override string ToString()
    {
        var text = new StringBuilder();
        text.AppendLine($"{Mode}: {FloatModelBytes / 1048576.0:F1} MiB -> {QuantizedModelBytes / 1048576.0:F1} MiB ({SizeRatio:P1})");
        string verb = Mode == QuantizationMode.Float16 ? "converted to float16" : "quantized";
        foreach (var (op, count) in QuantizedNodes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.AppendLine($"  {verb} {op}: {count}");
        foreach (var group in SkippedNodes.GroupBy(s => (s.OperatorType, s.Reason)))
            text.AppendLine($"  left in float {group.Key.OperatorType} x{group.Count()}: {group.Key.Reason} (e.g. '{group.First().NodeName}')");
        return text.ToString();
    }
}
