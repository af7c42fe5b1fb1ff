namespace MLExtensions.Onnx;

/// <summary>The output of <see cref="OnnxQuantizer.Quantize"/>: the quantized model and what was done.</summary>
/// <param name="Model">The serialized quantized ONNX model (same graph inputs and outputs as the float model).</param>
/// <param name="Report">Sizes, converted nodes, nodes left in float.</param>
public sealed record QuantizationResult(byte[] Model, QuantizationReport Report);
