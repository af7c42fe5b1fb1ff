using Google.Protobuf;
using MLExtensions.Core;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using Onnx;
using Xunit;

namespace MLExtensions.Tests.Core;

public class OnnxModelReaderTests
{
    private static readonly float[] Weights = { 1.5f, -2.25f, 3f, 0.125f, -0f, 7e-8f };

    /// <summary>A two-node model with one initializer stored as float_data, one as raw_data, a Constant node and an int64 raw tensor.</summary>
    private static ModelProto SmallModel()
    {
        var graph = new GraphProto { Name = "small" };
        graph.Input.Add(ValueInfo("x", TensorProto.Types.DataType.Float, "batch", 3));
        graph.Input.Add(ValueInfo("w_float", TensorProto.Types.DataType.Float, 2, 3)); // pre-IR-4 style: initializer listed as input
        graph.Output.Add(ValueInfo("y", TensorProto.Types.DataType.Float, "batch", 2));
        graph.Initializer.Add(new TensorProto { Name = "w_float", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 2, 3 }, FloatData = { Weights } });
        graph.Initializer.Add(new TensorProto { Name = "w_raw", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 3, 2 }, RawData = ByteString.CopyFrom(LittleEndian(Weights)) });
        graph.Initializer.Add(new TensorProto { Name = "shape", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 2 }, RawData = ByteString.CopyFrom(BitConverter.GetBytes(-1L).Concat(BitConverter.GetBytes(2L)).ToArray()) });
        graph.Node.Add(new NodeProto
        {
            OpType = "Constant",
            Name = "bias_node",
            Output = { "bias" },
            Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, Dims = { 2 }, FloatData = { 0.5f, -0.5f } } } },
        });
        graph.Node.Add(new NodeProto
        {
            OpType = "Constant",
            Name = "scale_node",
            Output = { "scale" },
            Attribute = { new AttributeProto { Name = "value_floats", Type = AttributeProto.Types.AttributeType.Floats, Floats = { 2f, 4f } } },
        });
        graph.Node.Add(new NodeProto
        {
            OpType = "Gemm",
            Name = "fc",
            Input = { "x", "w_float", "bias" },
            Output = { "y" },
            Attribute =
            {
                new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 },
                new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f },
                new AttributeProto { Name = "note", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("hello") },
                new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 2, 3 } },
            },
        });
        var model = new ModelProto { IrVersion = 7, ProducerName = "test", ProducerVersion = "1.0", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }

    internal static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    private static byte[] LittleEndian(float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void ReadsInitializersFromFloatDataRawDataAndConstantNodes()
    {
        var reader = OnnxModelReader.Load(SmallModel().ToByteArray(), "small model");

        Assert.Equal(new[] { "w_float", "w_raw", "shape", "bias", "scale" }, reader.Initializers.Select(t => t.Name));
        var fromFloatData = reader.GetInitializer("w_float");
        Assert.Equal(new long[] { 2, 3 }, fromFloatData.Dims);
        Assert.Equal(OnnxElementType.Float, fromFloatData.ElementType);
        Assert.Equal(OnnxTensorOrigin.Initializer, fromFloatData.Origin);
        Assert.Equal(Weights, fromFloatData.ToFloatArray());
        Assert.Equal(Weights, reader.GetInitializer("w_raw").ToFloatArray());
        Assert.Equal(new long[] { 3, 2 }, reader.GetInitializer("w_raw").Dims);
        Assert.Equal(new long[] { -1, 2 }, reader.GetInitializer("shape").ToInt64Array());

        var constant = reader.GetInitializer("bias");
        Assert.Equal(OnnxTensorOrigin.ConstantNode, constant.Origin);
        Assert.Equal(new[] { 0.5f, -0.5f }, constant.ToFloatArray());
        Assert.Equal(new[] { 2f, 4f }, reader.GetInitializer("scale").ToFloatArray());

        var missing = Assert.Throws<KeyNotFoundException>(() => reader.GetInitializer("nope"));
        Assert.Contains("small model", missing.Message);
        Assert.Contains("'nope'", missing.Message);
    }

    [Fact]
    public void ListsNodesAttributesInputsAndOutputs()
    {
        var reader = OnnxModelReader.Load(SmallModel().ToByteArray(), "small model");

        Assert.Equal(7, reader.IrVersion);
        Assert.Equal(13, reader.OpsetVersion);
        Assert.Equal("test", reader.ProducerName);
        Assert.Equal(new[] { "Constant", "Constant", "Gemm" }, reader.Nodes.Select(n => n.OpType));
        var gemm = reader.Nodes[2];
        Assert.Equal("fc", gemm.Name);
        Assert.Equal(2, gemm.Index);
        Assert.Equal(new[] { "x", "w_float", "bias" }, gemm.Inputs);
        Assert.Equal(new[] { "y" }, gemm.Outputs);
        Assert.Equal(1, gemm.GetInt("transB", 0));
        Assert.Equal(0, gemm.GetInt("transA", 0));
        Assert.Equal(0.5f, gemm.GetFloat("alpha", 1f));
        Assert.Equal("hello", gemm.Attributes["note"].String);
        Assert.Equal(new long[] { 1, 2, 3 }, gemm.GetInts("pads"));
        Assert.Throws<InvalidOperationException>(() => gemm.Attributes["pads"].Float);

        Assert.Same(gemm, reader.ProducerOf("y"));
        Assert.Null(reader.ProducerOf("x"));
        Assert.Equal(new[] { gemm }, reader.ConsumersOf("bias"));
        Assert.Empty(reader.ConsumersOf("y"));

        // The initializer listed as a graph input (old exporters did that) is not a run-time input.
        var input = Assert.Single(reader.Inputs);
        Assert.Equal("x", input.Name);
        Assert.Equal(new long[] { -1, 3 }, input.Shape);
        Assert.Equal(new[] { "batch", "" }, input.DimNames);
        Assert.Equal("y Float[batch,2]", Assert.Single(reader.Outputs).ToString());
    }

    [Fact]
    public void ConvertsHalfDoubleAndBFloat16()
    {
        var model = SmallModel();
        var halves = new[] { (Half)1.5f, (Half)(-2f) };
        model.Graph.Initializer.Add(new TensorProto { Name = "h_raw", DataType = (int)TensorProto.Types.DataType.Float16, Dims = { 2 }, RawData = ByteString.CopyFrom(halves.SelectMany(h => BitConverter.GetBytes(h)).ToArray()) });
        model.Graph.Initializer.Add(new TensorProto { Name = "h_int32", DataType = (int)TensorProto.Types.DataType.Float16, Dims = { 2 }, Int32Data = { halves.Select(h => (int)BitConverter.HalfToUInt16Bits(h)) } });
        model.Graph.Initializer.Add(new TensorProto { Name = "d", DataType = (int)TensorProto.Types.DataType.Double, Dims = { 2 }, DoubleData = { 0.25, -8 } });
        model.Graph.Initializer.Add(new TensorProto { Name = "bf", DataType = (int)TensorProto.Types.DataType.Bfloat16, Dims = { 1 }, RawData = ByteString.CopyFrom(0xC0, 0x3F) }); // 0x3FC0 = 1.5
        var reader = OnnxModelReader.Load(model.ToByteArray(), "m");

        Assert.Equal(new[] { 1.5f, -2f }, reader.GetInitializer("h_raw").ToFloatArray());
        Assert.Equal(new[] { 1.5f, -2f }, reader.GetInitializer("h_int32").ToFloatArray());
        Assert.Equal(new[] { 0.25f, -8f }, reader.GetInitializer("d").ToFloatArray());
        Assert.Equal(new[] { 1.5f }, reader.GetInitializer("bf").ToFloatArray());
        Assert.Throws<NotSupportedException>(() => reader.GetInitializer("shape").ToFloatArray());
        Assert.Throws<NotSupportedException>(() => reader.GetInitializer("w_raw").ToInt64Array());
    }

    [Fact]
    public void DataThatDoesNotMatchTheShapeIsReportedAsCorrupt()
    {
        var model = SmallModel();
        model.Graph.Initializer.Add(new TensorProto { Name = "short_raw", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 4 }, RawData = ByteString.CopyFrom(new byte[12]) });
        model.Graph.Initializer.Add(new TensorProto { Name = "short_floats", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 4 }, FloatData = { 1f } });
        var external = new TensorProto { Name = "external", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 4 }, DataLocation = TensorProto.Types.DataLocation.External };
        external.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        model.Graph.Initializer.Add(external);
        var reader = OnnxModelReader.Load(model.ToByteArray(), "model X");

        var raw = Assert.Throws<InvalidDataException>(() => reader.GetInitializer("short_raw").ToFloatArray());
        Assert.Contains("'short_raw'", raw.Message);
        Assert.Contains("model X", raw.Message);
        Assert.Contains("12 bytes", raw.Message);
        Assert.Contains("'short_floats'", Assert.Throws<InvalidDataException>(() => reader.GetInitializer("short_floats").ToFloatArray()).Message);
        Assert.Contains("external data", Assert.Throws<NotSupportedException>(() => reader.GetInitializer("external").ToFloatArray()).Message);
    }

    [Fact]
    public void MissingFilesAndFoldersAreNamed()
    {
        using var temp = new TempDirectory();
        string path = temp.File("absent.onnx");
        var e = Assert.Throws<FileNotFoundException>(() => OnnxModelReader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Equal(path, e.FileName);
        Assert.Contains("is a folder", Assert.Throws<FileNotFoundException>(() => OnnxModelReader.Load(temp.Path)).Message);
    }

    [Theory]
    [InlineData("text")]
    [InlineData("empty")]
    [InlineData("truncated")]
    public void CorruptFilesAreReportedWithTheirPath(string kind)
    {
        using var temp = new TempDirectory();
        string path = temp.File(kind + ".onnx");
        byte[] valid = SmallModel().ToByteArray();
        File.WriteAllBytes(path, kind switch
        {
            "text" => "this is not a protobuf message, just text\n"u8.ToArray(),
            "empty" => Array.Empty<byte>(),
            _ => valid[..(valid.Length / 2)],
        });

        var e = Assert.Throws<InvalidDataException>(() => OnnxModelReader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not a valid ONNX model", e.Message);
    }

    [Fact]
    public void ReadsTheRealPreprocessingModel()
    {
        // ML.NET's ResNetPreprocess.onnx (TLC, IR 3): float_data initializer, Split/Concat/Sub graph.
        var reader = OnnxModelReader.Load(ResNet18OnnxWeights.LocatePreprocess());

        Assert.Equal("TLC", reader.ProducerName);
        Assert.Equal(new[] { "Split", "Concat", "Sub" }, reader.Nodes.Select(n => n.OpType));
        Assert.Equal(new long[] { 1, 1, 1 }, reader.Nodes[0].GetInts("split"));
        Assert.Equal(new[] { "BInp", "GInp", "RInp" }, reader.Nodes[1].Inputs);
        Assert.Equal("OriginalInput Float[1,3,224,224]", Assert.Single(reader.Inputs).ToString());
        var mean = Assert.Single(reader.Initializers);
        Assert.Equal("MeanImage", mean.Name);
        Assert.Equal(150_528, mean.ToFloatArray().Length);
    }
}
