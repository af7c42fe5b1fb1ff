using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;

namespace MLExtensions.Onnx;

/// <summary>
/// Element types of every tensor in a graph. Exported models rarely carry <c>value_info</c> for intermediate tensors,
/// and writing our own ONNX type inference would duplicate ONNX Runtime's; instead every node output is declared as a
/// graph output without a type and ONNX Runtime reports the types it inferred when loading (nothing is run).
/// </summary>
internal static class TensorTypes
{
    public static Dictionary<string, TensorElementType> Infer(ModelProto model)
    {
        var copy = model.Clone();
        var declared = new HashSet<string>(copy.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (string name in copy.Graph.Node.SelectMany(n => n.Output).Where(n => n.Length > 0))
        {
            if (declared.Add(name))
                copy.Graph.Output.Add(new ValueInfoProto { Name = name });
        }
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(copy), options);
        var types = new Dictionary<string, TensorElementType>(StringComparer.Ordinal);
        foreach (var (name, meta) in session.OutputMetadata)
        {
            if (meta.IsTensor)
                types[name] = meta.ElementDataType;
        }
        foreach (var (name, meta) in session.InputMetadata)
        {
            if (meta.IsTensor)
                types[name] = meta.ElementDataType;
        }
        foreach (var init in model.Graph.Initializer)
            types[init.Name] = (TensorElementType)init.DataType;
        return types;
    }
}
