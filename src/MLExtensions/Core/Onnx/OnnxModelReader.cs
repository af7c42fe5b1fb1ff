using Google.Protobuf;
using Onnx;

namespace MLExtensions.Core;

/// <summary>A graph input or output: name, element type and shape.</summary>
/// <param name="Name">The tensor name.</param>
/// <param name="ElementType">The element type (<see cref="OnnxElementType.Undefined"/> for non-tensor values).</param>
/// <param name="Shape">The dimensions; -1 where a dimension is symbolic or unknown.</param>
/// <param name="DimNames">The symbolic name of each dimension (e.g. <c>batch</c>); empty where the dimension is fixed.</param>
public sealed record OnnxValueInfo(string Name, OnnxElementType ElementType, IReadOnlyList<long> Shape, IReadOnlyList<string> DimNames)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Name} {ElementType}[{string.Join(",", Shape.Select((d, i) => d >= 0 ? d.ToString() : DimNames[i].Length > 0 ? DimNames[i] : "?"))}]";
}

/// <summary>
/// Reads an ONNX model file to get at its weights and graph structure: the constant tensors (initializers and
/// <c>Constant</c> nodes), the nodes with their attributes, and the graph inputs and outputs. Meant for mapping
/// pretrained weights onto TorchSharp modules; it does not run or validate the model (use ONNX Runtime for that).
/// </summary>
/// <remarks>
/// The protobuf classes come from the OnnxSharp package; none of its types appear in this API. The whole model is
/// held in memory; tensor values are decoded only when asked for. Tensors stored in external data files
/// (models over 2 GB) are listed but cannot be read.
/// </remarks>
public sealed class OnnxModelReader
{
    private readonly Dictionary<string, OnnxTensor> _tensorsByName;
    private readonly Dictionary<string, OnnxNode> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> _consumers = new(StringComparer.Ordinal);

    private OnnxModelReader(ModelProto model, string source)
    {
        Source = source;
        IrVersion = model.IrVersion;
        ProducerName = model.ProducerName;
        ProducerVersion = model.ProducerVersion;
        OpsetVersion = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        var graph = model.Graph;

        var nodes = new List<OnnxNode>(graph.Node.Count);
        foreach (var proto in graph.Node)
            nodes.Add(new OnnxNode(proto, nodes.Count, source));
        Nodes = nodes;

        var tensors = new List<OnnxTensor>();
        foreach (var t in graph.Initializer)
            tensors.Add(new OnnxTensor(t, t.Name, OnnxTensorOrigin.Initializer, source));
        foreach (var node in nodes)
        {
            if (node.OpType == "Constant" && node.Domain is ("" or "ai.onnx") && node.Outputs.Count == 1 && ConstantValue(node, source) is { } value)
                tensors.Add(value);
        }
        Initializers = tensors;
        _tensorsByName = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        foreach (var t in tensors)
            _tensorsByName[t.Name] = t;

        foreach (var node in nodes)
        {
            foreach (var output in node.Outputs)
                _producers[output] = node;
            foreach (var input in node.Inputs.Where(i => i.Length > 0).Distinct())
            {
                if (!_consumers.TryGetValue(input, out var list))
                    _consumers[input] = list = new List<OnnxNode>();
                list.Add(node);
            }
        }

        // Before IR version 4 every initializer was also listed as a graph input; those are weights, not inputs.
        Inputs = graph.Input.Where(v => !_tensorsByName.ContainsKey(v.Name)).Select(ToValueInfo).ToArray();
        Outputs = graph.Output.Select(ToValueInfo).ToArray();
    }

    /// <summary>Where the model was read from (a full path, or the name given for a stream or byte array); used in messages.</summary>
    public string Source { get; }

    /// <summary>The ONNX IR version of the file.</summary>
    public long IrVersion { get; }

    /// <summary>The exporting tool, e.g. <c>pytorch</c> or <c>CNTK</c>.</summary>
    public string ProducerName { get; }

    /// <summary>The exporting tool's version.</summary>
    public string ProducerVersion { get; }

    /// <summary>The opset version of the default ONNX domain; 0 if the file declares none.</summary>
    public long OpsetVersion { get; }

    /// <summary>The graph inputs that are fed at run time (initializers listed as inputs by old exporters are left out).</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    /// <summary>The graph outputs.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    /// <summary>The nodes in file order (topological order in a valid model).</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>
    /// The constant tensors: the graph's initializers in file order, then the values of <c>Constant</c> nodes
    /// (named after the node's output). <see cref="OnnxTensor.Origin"/> tells them apart.
    /// </summary>
    public IReadOnlyList<OnnxTensor> Initializers { get; }

    /// <summary>Reads an ONNX model from a file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist (the message names the path).</exception>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model (the message names the path).</exception>
    public static OnnxModelReader Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException(Directory.Exists(full)
                ? $"'{full}' is a folder; expected the path of an ONNX model file (.onnx)."
                : $"ONNX model file '{full}' does not exist.", full);
        }
        using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Load(stream, $"'{full}'");
    }

    /// <summary>Reads an ONNX model from a stream (read to its end; not closed).</summary>
    /// <param name="stream">The serialized model.</param>
    /// <param name="sourceName">A name for the model in error messages, e.g. an embedded resource's name.</param>
    /// <exception cref="InvalidDataException">The data is not a valid ONNX model.</exception>
    public static OnnxModelReader Load(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{sourceName} is not a valid ONNX model: it cannot be parsed as an ONNX ModelProto ({e.Message}). The file may be truncated or corrupt.", e);
        }
        return FromProto(model, sourceName);
    }

    /// <summary>Reads an ONNX model from its serialized bytes.</summary>
    /// <param name="bytes">The serialized model.</param>
    /// <param name="sourceName">A name for the model in error messages.</param>
    /// <exception cref="InvalidDataException">The data is not a valid ONNX model.</exception>
    public static OnnxModelReader Load(byte[] bytes, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var stream = new MemoryStream(bytes, writable: false);
        return Load(stream, sourceName);
    }

    /// <summary>The constant tensor with this name (initializer or <c>Constant</c> node output).</summary>
    /// <exception cref="KeyNotFoundException">There is no such constant tensor.</exception>
    public OnnxTensor GetInitializer(string name) =>
        TryGetInitializer(name, out var tensor)
            ? tensor
            : throw new KeyNotFoundException($"{Source} has no initializer or Constant node named '{name}'.");

    /// <summary>Looks up a constant tensor by name.</summary>
    public bool TryGetInitializer(string name, out OnnxTensor tensor) => _tensorsByName.TryGetValue(name, out tensor!);

    /// <summary>The node that produces the tensor <paramref name="tensorName"/>, or null for graph inputs and initializers.</summary>
    public OnnxNode? ProducerOf(string tensorName) => _producers.GetValueOrDefault(tensorName);

    /// <summary>The nodes that read the tensor <paramref name="tensorName"/>, in graph order.</summary>
    public IReadOnlyList<OnnxNode> ConsumersOf(string tensorName) =>
        _consumers.TryGetValue(tensorName, out var list) ? list : Array.Empty<OnnxNode>();

    private static OnnxModelReader FromProto(ModelProto model, string source)
    {
        // Protobuf accepts many byte sequences (unknown fields are skipped), so a non-ONNX file can parse
        // "successfully" into an empty message; a model always has a graph with at least one node.
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new InvalidDataException($"{source} is not a valid ONNX model: it contains no graph (or an empty one). The file may be truncated, corrupt or of another format.");
        return new OnnxModelReader(model, source);
    }

    private static OnnxTensor? ConstantValue(OnnxNode node, string source)
    {
        string name = node.Outputs[0];
        foreach (var attribute in node.Attributes.Values)
        {
            if (attribute.Name == "value" && attribute.Kind == OnnxAttributeKind.Tensor)
                return attribute.Tensor;
            // Opset 12 added scalar and list shorthands for Constant; they are turned into tensors here.
            var proto = attribute.Name switch
            {
                "value_float" => new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, FloatData = { attribute.Float } },
                "value_floats" => new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, Dims = { attribute.Floats.Count }, FloatData = { attribute.Floats } },
                "value_int" => new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64, Int64Data = { attribute.Int } },
                "value_ints" => new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64, Dims = { attribute.Ints.Count }, Int64Data = { attribute.Ints } },
                _ => null,
            };
            if (proto is not null)
                return new OnnxTensor(proto, name, OnnxTensorOrigin.ConstantNode, source);
        }
        return null;
    }

    private static OnnxValueInfo ToValueInfo(ValueInfoProto value)
    {
        var tensorType = value.Type?.TensorType;
        var dims = tensorType?.Shape?.Dim;
        var shape = dims?.Select(d => d.HasDimValue ? d.DimValue : -1L).ToArray() ?? Array.Empty<long>();
        var names = dims?.Select(d => d.HasDimValue ? "" : d.DimParam ?? "").ToArray() ?? Array.Empty<string>();
        return new OnnxValueInfo(value.Name, (OnnxElementType)(tensorType?.ElemType ?? 0), shape, names);
    }
}
