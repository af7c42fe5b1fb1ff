using Google.Protobuf;
using Onnx;

namespace MLExtensions.Onnx.Export;

/// <summary>Builds an OnnxSharp <see cref="GraphProto"/>: the graph of a stand-alone exported model.</summary>
internal sealed class ProtoGraphWriter : IOnnxGraphWriter
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>ONNX Runtime's contrib operator domain.</summary>
    public const string OnnxRuntimeDomain = "com.microsoft";

    public ProtoGraphWriter(int opsetVersion, string graphName, bool targetsOnnxRuntime = false)
    {
        OpsetVersion = opsetVersion;
        TargetsOnnxRuntime = targetsOnnxRuntime;
        Graph = new GraphProto { Name = graphName };
    }

    /// <summary>The graph built so far.</summary>
    public GraphProto Graph { get; }

    public int OpsetVersion { get; }

    public bool TargetsOnnxRuntime { get; }

    /// <summary>Whether a contrib node was added, so the model must import the <see cref="OnnxRuntimeDomain"/> opset.</summary>
    public bool UsesOnnxRuntimeDomain { get; private set; }

    /// <summary>Reserves <paramref name="name"/> exactly (graph inputs and outputs have fixed public names).</summary>
    public string Reserve(string name)
    {
        if (!_names.Add(name))
            throw new InvalidOperationException($"The ONNX name '{name}' is already used.");
        return name;
    }

    /// <summary>A name not used yet in this graph, derived from <paramref name="hint"/>.</summary>
    public string UniqueName(string hint)
    {
        if (_names.Add(hint))
            return hint;
        for (int i = 1; ; i++)
        {
            string candidate = $"{hint}_{i}";
            if (_names.Add(candidate))
                return candidate;
        }
    }

    public string AddInitializer(string nameHint, float[] values, long[] dims)
    {
        var tensor = NewTensor(nameHint, TensorProto.Types.DataType.Float, dims);
        var bytes = new byte[values.Length * sizeof(float)];
        // ONNX raw data is little-endian, which is what Buffer.BlockCopy gives on every platform .NET runs on here.
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        tensor.RawData = ByteString.CopyFrom(bytes);
        return tensor.Name;
    }

    public string AddInitializer(string nameHint, long[] values, long[] dims)
    {
        var tensor = NewTensor(nameHint, TensorProto.Types.DataType.Int64, dims);
        tensor.Int64Data.Add(values);
        return tensor.Name;
    }

    public string AddNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes)
    {
        string output = UniqueName(outputHint);
        AddNodeWithOutput(opType, inputs, output, attributes);
        return output;
    }

    public string AddOnnxRuntimeNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes)
    {
        if (!TargetsOnnxRuntime)
            throw new InvalidOperationException($"This graph is written as portable ONNX; ONNX Runtime's contrib operator {opType} cannot be used in it.");
        string output = UniqueName(outputHint);
        AddNodeWithOutput(opType, inputs, output, attributes).Domain = OnnxRuntimeDomain;
        UsesOnnxRuntimeDomain = true;
        return output;
    }

    /// <summary>Adds a node whose output name is already reserved (a graph output).</summary>
    public NodeProto AddNodeWithOutput(string opType, IReadOnlyList<string> inputs, string output, params NodeAttribute[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = UniqueName(opType + "_" + output) };
        node.Input.Add(inputs);
        node.Output.Add(output);
        foreach (var a in attributes)
            node.Attribute.Add(ToProto(a));
        Graph.Node.Add(node);
        return node;
    }

    private TensorProto NewTensor(string nameHint, TensorProto.Types.DataType type, long[] dims)
    {
        var tensor = new TensorProto { Name = UniqueName(nameHint), DataType = (int)type };
        tensor.Dims.Add(dims);
        Graph.Initializer.Add(tensor);
        return tensor;
    }

    private static AttributeProto ToProto(NodeAttribute a)
    {
        var proto = new AttributeProto { Name = a.Name };
        if (a.Int is long i)
        {
            proto.Type = AttributeProto.Types.AttributeType.Int;
            proto.I = i;
        }
        else if (a.Float is float f)
        {
            proto.Type = AttributeProto.Types.AttributeType.Float;
            proto.F = f;
        }
        else if (a.Ints is long[] ints)
        {
            proto.Type = AttributeProto.Types.AttributeType.Ints;
            proto.Ints.Add(ints);
        }
        else if (a.Text is string s)
        {
            proto.Type = AttributeProto.Types.AttributeType.String;
            proto.S = ByteString.CopyFromUtf8(s);
        }
        else
        {
            throw new ArgumentException($"Attribute '{a.Name}' has no value.", nameof(a));
        }
        return proto;
    }
}
