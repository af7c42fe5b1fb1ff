using Onnx;

namespace MLExtensions.Core;

/// <summary>A node of an ONNX graph: operator, name, input and output tensor names, attributes.</summary>
public sealed class OnnxNode
{
    internal OnnxNode(NodeProto proto, int index, string source)
    {
        Index = index;
        OpType = proto.OpType;
        Domain = proto.Domain;
        Name = proto.Name;
        Inputs = proto.Input.ToArray();
        Outputs = proto.Output.ToArray();
        var attributes = new Dictionary<string, OnnxAttribute>(StringComparer.Ordinal);
        foreach (var a in proto.Attribute)
            attributes[a.Name] = new OnnxAttribute(a, this, source);
        Attributes = attributes;
    }

    /// <summary>Position in the graph's node list (topological order in a valid model).</summary>
    public int Index { get; }

    /// <summary>The operator, e.g. <c>Conv</c>, <c>BatchNormalization</c>, <c>MatMul</c>.</summary>
    public string OpType { get; }

    /// <summary>The operator domain; empty for the default ONNX domain.</summary>
    public string Domain { get; }

    /// <summary>The node's name (may be empty; exporters are not required to set it).</summary>
    public string Name { get; }

    /// <summary>Names of the input tensors, in operator order. An empty name marks an omitted optional input.</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>Names of the output tensors, in operator order.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Attributes by name.</summary>
    public IReadOnlyDictionary<string, OnnxAttribute> Attributes { get; }

    /// <summary>An integer attribute, or <paramref name="fallback"/> when absent.</summary>
    public long GetInt(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.Int : fallback;

    /// <summary>A float attribute, or <paramref name="fallback"/> when absent.</summary>
    public float GetFloat(string name, float fallback) => Attributes.TryGetValue(name, out var a) ? a.Float : fallback;

    /// <summary>An integer-list attribute, or an empty list when absent.</summary>
    public IReadOnlyList<long> GetInts(string name) => Attributes.TryGetValue(name, out var a) ? a.Ints : Array.Empty<long>();

    /// <inheritdoc />
    public override string ToString() => $"{OpType} '{Name}' ({string.Join(", ", Inputs)}) -> ({string.Join(", ", Outputs)})";
}

/// <summary>Kinds of ONNX node attributes this reader decodes.</summary>
public enum OnnxAttributeKind
{
    /// <summary>A kind not decoded here (graphs, sparse tensors, type protos).</summary>
    Other,
    /// <summary>A single float.</summary>
    Float,
    /// <summary>A single integer.</summary>
    Int,
    /// <summary>A string (decoded as UTF-8).</summary>
    String,
    /// <summary>A tensor.</summary>
    Tensor,
    /// <summary>A list of floats.</summary>
    Floats,
    /// <summary>A list of integers.</summary>
    Ints,
    /// <summary>A list of strings.</summary>
    Strings,
}

/// <summary>One attribute of an <see cref="OnnxNode"/>. Reading a value of the wrong kind throws.</summary>
public sealed class OnnxAttribute
{
    private readonly AttributeProto _proto;
    private readonly OnnxNode _node;
    private readonly string _source;

    internal OnnxAttribute(AttributeProto proto, OnnxNode node, string source)
    {
        _proto = proto;
        _node = node;
        _source = source;
        Kind = proto.Type switch
        {
            AttributeProto.Types.AttributeType.Float => OnnxAttributeKind.Float,
            AttributeProto.Types.AttributeType.Int => OnnxAttributeKind.Int,
            AttributeProto.Types.AttributeType.String => OnnxAttributeKind.String,
            AttributeProto.Types.AttributeType.Tensor => OnnxAttributeKind.Tensor,
            AttributeProto.Types.AttributeType.Floats => OnnxAttributeKind.Floats,
            AttributeProto.Types.AttributeType.Ints => OnnxAttributeKind.Ints,
            AttributeProto.Types.AttributeType.Strings => OnnxAttributeKind.Strings,
            _ => OnnxAttributeKind.Other,
        };
    }

    /// <summary>The attribute's name.</summary>
    public string Name => _proto.Name;

    /// <summary>The attribute's kind.</summary>
    public OnnxAttributeKind Kind { get; }

    /// <summary>The value of a <see cref="OnnxAttributeKind.Float"/> attribute.</summary>
    public float Float => Expect(OnnxAttributeKind.Float)._proto.F;

    /// <summary>The value of an <see cref="OnnxAttributeKind.Int"/> attribute.</summary>
    public long Int => Expect(OnnxAttributeKind.Int)._proto.I;

    /// <summary>The value of a <see cref="OnnxAttributeKind.String"/> attribute.</summary>
    public string String => Expect(OnnxAttributeKind.String)._proto.S.ToStringUtf8();

    /// <summary>The values of a <see cref="OnnxAttributeKind.Floats"/> attribute.</summary>
    public IReadOnlyList<float> Floats => Expect(OnnxAttributeKind.Floats)._proto.Floats.ToArray();

    /// <summary>The values of an <see cref="OnnxAttributeKind.Ints"/> attribute.</summary>
    public IReadOnlyList<long> Ints => Expect(OnnxAttributeKind.Ints)._proto.Ints.ToArray();

    /// <summary>The values of a <see cref="OnnxAttributeKind.Strings"/> attribute.</summary>
    public IReadOnlyList<string> Strings => Expect(OnnxAttributeKind.Strings)._proto.Strings.Select(s => s.ToStringUtf8()).ToArray();

    /// <summary>The value of a <see cref="OnnxAttributeKind.Tensor"/> attribute.</summary>
    public OnnxTensor Tensor
    {
        get
        {
            var t = Expect(OnnxAttributeKind.Tensor)._proto.T;
            bool constant = _node.OpType == "Constant" && _node.Outputs.Count > 0;
            return new OnnxTensor(t, constant ? _node.Outputs[0] : t.Name, constant ? OnnxTensorOrigin.ConstantNode : OnnxTensorOrigin.Attribute, _source);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        OnnxAttributeKind.Float => $"{Name}={Float}",
        OnnxAttributeKind.Int => $"{Name}={Int}",
        OnnxAttributeKind.String => $"{Name}={String}",
        OnnxAttributeKind.Floats => $"{Name}=[{string.Join(",", Floats)}]",
        OnnxAttributeKind.Ints => $"{Name}=[{string.Join(",", Ints)}]",
        OnnxAttributeKind.Strings => $"{Name}=[{string.Join(",", Strings)}]",
        OnnxAttributeKind.Tensor => $"{Name}={Tensor}",
        _ => $"{Name}=({_proto.Type})",
    };

    private OnnxAttribute Expect(OnnxAttributeKind kind)
    {
        if (Kind != kind)
            throw new InvalidOperationException($"Attribute '{Name}' of node {_node.OpType} '{_node.Name}' in {_source} is {Kind}, not {kind}.");
        return this;
    }
}
