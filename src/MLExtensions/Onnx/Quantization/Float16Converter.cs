using Google.Protobuf;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Core;
using Onnx;

namespace MLExtensions.Onnx;

/// <summary>
/// Converts a float32 graph to float16: float initializers and constants become half precision, casts to float32
/// become casts to float16, and the graph's float inputs and outputs get a Cast so callers keep feeding and reading
/// float32. Everything in between runs in float16 where the execution provider has a kernel; ONNX Runtime's CPU
/// provider inserts casts back to float32 around operators it has no float16 kernel for.
/// </summary>
internal static class Float16Converter
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Float16Code = (int)TensorProto.Types.DataType.Float16;

    public static void Convert(QuantizationGraph graph, Dictionary<string, int> converted)
    {
        var types = TensorTypes.Infer(graph.Model);
        var g = graph.Graph;
        // Count the nodes that compute in float (any float input or output) before rewriting; they are what changes precision.
        foreach (var node in g.Node)
        {
            if (node.Input.Concat(node.Output).Any(t => types.GetValueOrDefault(t) == TensorElementType.Float))
                converted[node.OpType] = converted.GetValueOrDefault(node.OpType) + 1;
        }

        foreach (var init in g.Initializer.Where(t => t.DataType == Float))
            ToHalf(init);
        foreach (var node in g.Node.ToList())
        {
            foreach (var attribute in node.Attribute)
            {
                if (attribute.T is { DataType: Float } tensor)
                    ToHalf(tensor);
            }
            if (node.OpType == "Cast" && QuantizationGraph.Attribute(node, "to") is { } to && to.I == Float)
                to.I = Float16Code;
        }

        foreach (var input in g.Input.Where(i => i.Type?.TensorType?.ElemType == Float).ToList())
        {
            var readers = graph.Readers(input.Name);
            string half = graph.AddNode("Cast", input.Name, new[] { input.Name }, attributes: QuantizationGraph.IntAttr("to", Float16Code))[0];
            foreach (var reader in readers)
                Rename(reader.Input, input.Name, half);
        }
        foreach (var output in g.Output.Where(o => types.GetValueOrDefault(o.Name) == TensorElementType.Float).ToList())
        {
            var producer = graph.Producer(output.Name);
            if (producer is null)
                continue; // a graph input passed straight through stays float32
            string half = graph.FreshName($"{output.Name}_float16");
            Rename(producer.Output, output.Name, half);
            foreach (var reader in graph.Readers(output.Name))
                Rename(reader.Input, output.Name, half);
            graph.AddNodeWithOutputs("Cast", output.Name, new[] { half }, new[] { output.Name }, attributes: QuantizationGraph.IntAttr("to", Float));
        }
        // Intermediate type annotations describe the float32 graph; ONNX Runtime re-infers them.
        g.ValueInfo.Clear();
    }

    private static void Rename(Google.Protobuf.Collections.RepeatedField<string> names, string from, string to)
    {
        for (int i = 0; i < names.Count; i++)
            if (names[i] == from)
                names[i] = to;
    }

    private static void ToHalf(TensorProto tensor)
    {
        var values = new OnnxTensor(tensor, tensor.Name, OnnxTensorOrigin.Initializer, "the model").ToFloatArray();
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        tensor.FloatData.Clear();
        tensor.RawData = ByteString.CopyFrom(bytes);
        tensor.DataType = Float16Code;
    }
}
