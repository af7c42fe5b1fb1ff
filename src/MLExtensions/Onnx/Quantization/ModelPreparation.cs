using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MLExtensions.Onnx;

/// <summary>Steps before quantizing: parse, optional ONNX Runtime basic optimization, opset upgrade, initializer clean-up.</summary>
internal static class ModelPreparation
{
    /// <summary>Opset 13 is the first with per-axis QuantizeLinear/DequantizeLinear, which per-channel weights need.</summary>
    public const long QuantizationOpset = 13;

    public static ModelProto Parse(byte[] bytes)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"The bytes are not an ONNX model: they cannot be parsed as a ModelProto ({e.Message}).", e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new InvalidDataException("The bytes are not an ONNX model: there is no graph (or an empty one).");
        return model;
    }

    /// <summary>
    /// Lets ONNX Runtime apply its basic graph rewrites (constant folding, BatchNormalization folded into Conv, redundant
    /// node removal). These produce standard ONNX only, so the result is still a portable model, and folding before
    /// quantizing means the weights that actually run are the ones quantized.
    /// </summary>
    public static byte[] OptimizeBasic(byte[] bytes)
    {
        string path = Path.Combine(Path.GetTempPath(), $"mlext-quant-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC, OptimizedModelFilePath = path })
            using (new InferenceSession(bytes, options))
            {
            }
            return File.ReadAllBytes(path);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"ONNX Runtime cannot load the model to optimize it: {e.Message}", e);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Removes graph inputs that are also initializers (IR version 3 exporters list every weight as an input). From
    /// IR 4 on such inputs are overridable at run time, which stops ONNX Runtime from treating the weights as constants.
    /// </summary>
    public static void DropInitializerInputs(ModelProto model)
    {
        var weights = new HashSet<string>(model.Graph.Initializer.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var input in model.Graph.Input.Where(i => weights.Contains(i.Name)).ToList())
            model.Graph.Input.Remove(input);
    }

    /// <summary>
    /// Raises the default-domain opset to <paramref name="target"/>. Only operators whose behaviour did not change
    /// between the model's opset and the target are accepted (plus BatchNormalization's removed <c>spatial</c>
    /// attribute); anything else is refused with a message naming the operator, because silently reinterpreting a node
    /// under a newer definition could change the model's results.
    /// </summary>
    public static void UpgradeOpset(ModelProto model, long target)
    {
        var defaultImport = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        long current = defaultImport?.Version ?? 0;
        if (current >= target)
            return;
        if (current < 7)
            throw new NotSupportedException($"The model uses ONNX opset {current}; quantization needs opset {target} and upgrades only from opset 7 or later. Re-export the model with opset {target} or later.");
        foreach (var node in model.Graph.Node.Where(n => n.Domain is "" or "ai.onnx"))
        {
            if (node.OpType == "BatchNormalization")
            {
                // Opset 9 removed 'spatial' (always spatial since); a non-spatial batch norm has no newer equivalent.
                var spatial = QuantizationGraph.Attribute(node, "spatial");
                if (spatial is not null && spatial.I != 1)
                    throw new NotSupportedException($"Node '{QuantizationGraph.DisplayName(node)}' is a BatchNormalization with spatial=0, which has no opset-{target} equivalent; re-export the model with opset {target} or later.");
                if (spatial is not null)
                    node.Attribute.Remove(spatial);
                continue;
            }
            if (!UnchangedSinceOpset7.Contains(node.OpType))
                throw new NotSupportedException($"The model uses ONNX opset {current} and node '{QuantizationGraph.DisplayName(node)}' ({node.OpType}) changed meaning before opset {target}, so the model cannot be upgraded safely for quantization. Re-export the model with opset {target} or later.");
        }
        defaultImport!.Version = target;
        // Opset 13 requires IR version 7.
        model.IrVersion = Math.Max(model.IrVersion, 7);
    }

    /// <summary>
    /// Operators whose opset 7–13 revisions only added element types or optional attributes with the old default
    /// behaviour, so a node valid at an older opset means the same at 13.
    /// </summary>
    private static readonly HashSet<string> UnchangedSinceOpset7 = new(StringComparer.Ordinal)
    {
        "Conv", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Add", "Sub", "Mul", "Div", "Sum", "MaxPool", "AveragePool",
        "GlobalAveragePool", "GlobalMaxPool", "MatMul", "Gemm", "Concat", "Transpose", "Identity", "Exp", "Log", "Sqrt",
        "Abs", "Neg", "Erf", "Pow", "Reshape", "Flatten", "Constant", "Shape", "Gather",
    };
}
