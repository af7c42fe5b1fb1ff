using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>One-node ONNX models built with the protobuf classes, small enough that quantized results can be worked out by hand.</summary>
internal static class TinyOnnxModels
{
    /// <summary>Y[1, N] = X[1, K] × W[K, N].</summary>
    public static byte[] MatMul(float[,] w) =>
        Build(new[] { Input("X", 1, w.GetLength(0)) }, "Y", new[] { Weight("W", w) },
            new NodeProto { OpType = "MatMul", Name = "matmul", Input = { "X", "W" }, Output = { "Y" } });

    /// <summary>A 1×1 Conv with weight [M, C, 1, 1] taken from <paramref name="w"/>[M, C] and a bias [M]; input [1, C, 1, 1].</summary>
    public static byte[] Conv1x1(float[,] w, float[] bias)
    {
        int m = w.GetLength(0), c = w.GetLength(1);
        var weight = Tensor("W", new long[] { m, c, 1, 1 }, w.Cast<float>().ToArray());
        var b = Tensor("B", new long[] { m }, bias);
        return Build(new[] { Input("X", 1, c, 1, 1) }, "Y", new[] { weight, b },
            new NodeProto { OpType = "Conv", Name = "conv", Input = { "X", "W", "B" }, Output = { "Y" }, Attribute = { new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1 } } } });
    }

    /// <summary>Y = Relu(X) on [1, 4]: nothing to quantize.</summary>
    public static byte[] ReluOnly() =>
        Build(new[] { Input("X", 1, 4) }, "Y", Array.Empty<TensorProto>(), new NodeProto { OpType = "Relu", Name = "relu", Input = { "X" }, Output = { "Y" } });

    /// <summary>Y = A × B with both inputs fed at run time: a MatMul with no weight.</summary>
    public static byte[] ActivationMatMul() =>
        Build(new[] { Input("A", 1, 2), Input("B", 2, 2) }, "Y", Array.Empty<TensorProto>(), new NodeProto { OpType = "MatMul", Name = "mm", Input = { "A", "B" }, Output = { "Y" } });

    public static ValueInfoProto Input(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (long d in dims)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }

    public static TensorProto Weight(string name, float[,] values) =>
        Tensor(name, new long[] { values.GetLength(0), values.GetLength(1) }, values.Cast<float>().ToArray());

    public static TensorProto Tensor(string name, long[] dims, float[] values) =>
        new() { Name = name, DataType = (int)TensorProto.Types.DataType.Float, Dims = { dims }, FloatData = { values } };

    public static byte[] Build(IEnumerable<ValueInfoProto> inputs, string output, IEnumerable<TensorProto> initializers, params NodeProto[] nodes)
    {
        var graph = new GraphProto { Name = "tiny", Input = { inputs }, Initializer = { initializers }, Node = { nodes } };
        graph.Output.Add(new ValueInfoProto { Name = output, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } });
        var model = new ModelProto { IrVersion = 7, ProducerName = "test", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    /// <summary>Runs a model with float inputs and returns the first output.</summary>
    public static float[] Run(byte[] model, params (string Name, float[] Values, long[] Shape)[] inputs)
    {
        using var session = new InferenceSession(model);
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToArray();
        try
        {
            using var outputs = session.Run(new RunOptions(), inputs.Select(i => i.Name).ToArray(), values, new[] { session.OutputNames[0] });
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values)
                v.Dispose();
        }
    }
}
