using Google.Protobuf;
using MLExtensions.Core;
using Onnx;

namespace MLExtensions.Onnx;

/// <summary>
/// The mutable model a quantization pass rewrites: the protobuf graph plus lookups that the passes need (initializers
/// by name, consumers of a tensor, fresh names). Passes add nodes anywhere; <see cref="ToBytes"/> sorts the nodes
/// topologically, so a pass never has to find an insertion point.
/// </summary>
internal sealed class QuantizationGraph
{
    private readonly Dictionary<string, TensorProto> _initializers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _next;

    public QuantizationGraph(ModelProto model)
    {
        Model = model;
        foreach (var t in Graph.Initializer)
            _initializers[t.Name] = t;
        foreach (var n in Graph.Node)
        {
            _names.UnionWith(n.Output);
            _names.Add(n.Name);
        }
        _names.UnionWith(_initializers.Keys);
        _names.UnionWith(Graph.Input.Select(i => i.Name));
    }

    public ModelProto Model { get; }

    public GraphProto Graph => Model.Graph;

    /// <summary>The float32 weight tensor with this name, or null when the name is not a float32 initializer.</summary>
    public float[]? FloatInitializer(string name, out long[] dims)
    {
        dims = Array.Empty<long>();
        if (!_initializers.TryGetValue(name, out var proto) || proto.DataType != (int)TensorProto.Types.DataType.Float)
            return null;
        dims = proto.Dims.ToArray();
        return new OnnxTensor(proto, name, OnnxTensorOrigin.Initializer, "the model").ToFloatArray();
    }

    public bool IsInitializer(string name) => _initializers.ContainsKey(name);

    /// <summary>The node that writes <paramref name="tensor"/>, or null for graph inputs and initializers.</summary>
    public NodeProto? Producer(string tensor) => Graph.Node.FirstOrDefault(n => n.Output.Contains(tensor));

    /// <summary>The nodes that read <paramref name="tensor"/>, as a snapshot (passes rewire them while adding nodes).</summary>
    public List<NodeProto> Readers(string tensor) => Graph.Node.Where(n => n.Input.Contains(tensor)).ToList();

    /// <summary>How many node inputs and graph outputs read <paramref name="tensor"/>.</summary>
    public int ConsumerCount(string tensor) =>
        Graph.Node.Sum(n => n.Input.Count(i => i == tensor)) + Graph.Output.Count(o => o.Name == tensor);

    /// <summary>A name not used by any tensor or node of the graph, derived from <paramref name="stem"/> for readability.</summary>
    public string FreshName(string stem)
    {
        string name;
        do
            name = $"{stem}_{_next++}";
        while (!_names.Add(name));
        return name;
    }

    public string AddInitializer(string stem, TensorProto.Types.DataType type, long[] dims, byte[] rawData)
    {
        string name = FreshName(stem);
        var proto = new TensorProto { Name = name, DataType = (int)type, Dims = { dims }, RawData = ByteString.CopyFrom(rawData) };
        Graph.Initializer.Add(proto);
        _initializers[name] = proto;
        return name;
    }

    public string AddFloats(string stem, long[] dims, float[] values) =>
        AddInitializer(stem, TensorProto.Types.DataType.Float, dims, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>Adds a node with fresh output names; returns the outputs.</summary>
    public string[] AddNode(string opType, string stem, IEnumerable<string> inputs, int outputs = 1, string domain = "", params AttributeProto[] attributes)
    {
        var names = Enumerable.Range(0, outputs).Select(i => FreshName($"{stem}_{opType}{(outputs > 1 ? i.ToString() : "")}")).ToArray();
        AddNodeWithOutputs(opType, stem, inputs, names, domain, attributes);
        return names;
    }

    /// <summary>Adds a node writing the given outputs (used to keep a replaced node's output names).</summary>
    public void AddNodeWithOutputs(string opType, string stem, IEnumerable<string> inputs, IReadOnlyList<string> outputs, string domain = "", params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Domain = domain, Name = FreshName($"{stem}_{opType}"), Input = { inputs }, Output = { outputs } };
        node.Attribute.Add(attributes);
        Graph.Node.Add(node);
    }

    public void RemoveNode(NodeProto node) => Graph.Node.Remove(node);

    /// <summary>Drops initializers no node reads any more (replaced float weights) and graph inputs that named them.</summary>
    public void RemoveUnusedInitializers()
    {
        var used = new HashSet<string>(Graph.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        used.UnionWith(Graph.Output.Select(o => o.Name));
        var removed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in Graph.Initializer.Where(t => !used.Contains(t.Name)).ToList())
        {
            Graph.Initializer.Remove(t);
            _initializers.Remove(t.Name);
            removed.Add(t.Name);
        }
        // Only inputs that stood for a removed weight go; a real input the graph ignores is still part of its interface.
        foreach (var input in Graph.Input.Where(i => removed.Contains(i.Name)).ToList())
            Graph.Input.Remove(input);
    }

    /// <summary>Node name for messages: the name, or the first output when exporters left it empty.</summary>
    public static string DisplayName(NodeProto node) => node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? "(unnamed)";

    public static AttributeProto? Attribute(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

    public static long IntAttribute(NodeProto node, string name, long fallback) => Attribute(node, name) is { } a ? a.I : fallback;

    public static float FloatAttribute(NodeProto node, string name, float fallback) => Attribute(node, name) is { } a ? a.F : fallback;

    public static AttributeProto IntAttr(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>Serializes the model with its nodes in topological order (stable: ties keep file order).</summary>
    public byte[] ToBytes()
    {
        SortNodes();
        return Model.ToByteArray();
    }

    private void SortNodes()
    {
        var nodes = Graph.Node.ToList();
        var available = new HashSet<string>(Graph.Input.Select(i => i.Name).Concat(_initializers.Keys), StringComparer.Ordinal) { "" };
        var producers = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
            foreach (string o in nodes[i].Output)
                producers[o] = i;
        var waitingOn = new int[nodes.Count];
        var dependents = new List<int>[nodes.Count];
        for (int i = 0; i < nodes.Count; i++)
        {
            dependents[i] = new List<int>();
        }
        for (int i = 0; i < nodes.Count; i++)
        {
            foreach (string input in nodes[i].Input.Distinct())
            {
                if (!available.Contains(input) && producers.TryGetValue(input, out int p))
                {
                    waitingOn[i]++;
                    dependents[p].Add(i);
                }
            }
        }
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < nodes.Count; i++)
            if (waitingOn[i] == 0)
                ready.Enqueue(i, i);
        var order = new List<NodeProto>(nodes.Count);
        while (ready.TryDequeue(out int i, out _))
        {
            order.Add(nodes[i]);
            foreach (int d in dependents[i])
                if (--waitingOn[d] == 0)
                    ready.Enqueue(d, d);
        }
        if (order.Count != nodes.Count)
            throw new InvalidOperationException("The rewritten graph has a cycle; this is a bug in the quantizer.");
        Graph.Node.Clear();
        Graph.Node.Add(order);
    }
}
