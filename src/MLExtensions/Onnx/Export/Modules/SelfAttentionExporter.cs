using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Writes the self-attention of the BERT encoder's layers: softmax(q·kᵀ / √d + padding mask) · v per head, heads
/// concatenated. One instance per encoder, so the padding mask is prepared once for all layers.
/// </summary>
internal abstract class SelfAttentionExporter
{
    protected SelfAttentionExporter(IOnnxGraphWriter writer, BertConfig config)
    {
        Writer = writer;
        Config = config;
    }

    /// <summary>The graph.</summary>
    protected IOnnxGraphWriter Writer { get; }

    /// <summary>The encoder's configuration.</summary>
    protected BertConfig Config { get; }

    /// <summary>The fused form when the graph targets ONNX Runtime only, else the portable one.</summary>
    /// <param name="w">The graph.</param>
    /// <param name="config">The encoder's configuration (heads, width).</param>
    /// <param name="attentionMask">The [batch, sequence] int64 mask input (1 = token, 0 = padding).</param>
    /// <param name="name">Name prefix of the nodes.</param>
    public static SelfAttentionExporter For(IOnnxGraphWriter w, BertConfig config, string attentionMask, string name) =>
        w.TargetsOnnxRuntime ? new FusedSelfAttention(w, config, attentionMask, name) : new PortableSelfAttention(w, config, attentionMask, name);

    /// <summary>Emits the attention of <paramref name="x"/> [batch, sequence, hidden]; returns its output, same shape.</summary>
    public abstract string SelfAttention(Linear query, Linear key, Linear value, string x, string name);
}

/// <summary>Standard ONNX operators only: per-head Reshape/Transpose, MatMul, Softmax and an additive mask.</summary>
internal sealed class PortableSelfAttention : SelfAttentionExporter
{
    private readonly string _mask;

    public PortableSelfAttention(IOnnxGraphWriter w, BertConfig config, string attentionMask, string name) : base(w, config)
    {
        // Additive mask as in BertEncoder.forward: (1 − mask) · −1e9, broadcast over heads and query positions; built once for all layers.
        string maskFloat = w.AddNode("Cast", new[] { attentionMask }, name + ".mask_float", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Float));
        string inverted = w.AddNode("Sub", new[] { w.AddScalar(name + ".one", 1f), maskFloat }, name + ".mask_inverted");
        string additive = w.AddNode("Mul", new[] { inverted, w.AddScalar(name + ".mask_value", -1e9f) }, name + ".mask_additive");
        _mask = w.AddNode("Unsqueeze", new[] { additive, w.AddLongs(name + ".mask_axes", 1, 2) }, name + ".mask");
    }

    public override string SelfAttention(Linear query, Linear key, Linear value, string x, string name)
    {
        var w = Writer;
        int heads = Config.Heads, headSize = Config.HiddenSize / Config.Heads;
        string splitShape = w.AddLongs(name + ".split_shape", 0, 0, heads, headSize); // 0 copies batch and sequence
        string Split(Linear projection, string label, long[] permutation)
        {
            string projected = LinearExporter.Export(w, projection, x, $"{name}.{label}");
            string split = w.AddNode("Reshape", new[] { projected, splitShape }, $"{name}.{label}.split");
            return w.AddNode("Transpose", new[] { split }, $"{name}.{label}.heads", NodeAttribute.IntList("perm", permutation));
        }
        string q = Split(query, "query", new long[] { 0, 2, 1, 3 });   // [N, h, L, d]
        string kT = Split(key, "key", new long[] { 0, 2, 3, 1 });      // [N, h, d, L]
        string v = Split(value, "value", new long[] { 0, 2, 1, 3 });   // [N, h, L, d]
        string scores = w.AddNode("MatMul", new[] { q, kT }, name + ".scores");
        string scaled = w.AddNode("Div", new[] { scores, w.AddScalar(name + ".sqrt_d", (float)Math.Sqrt(headSize)) }, name + ".scaled");
        string masked = w.AddNode("Add", new[] { scaled, _mask }, name + ".masked");
        string probabilities = w.AddNode("Softmax", new[] { masked }, name + ".probabilities", NodeAttribute.Of("axis", -1L));
        string context = w.AddNode("MatMul", new[] { probabilities, v }, name + ".context_heads");
        string merged = w.AddNode("Transpose", new[] { context }, name + ".context_merged", NodeAttribute.IntList("perm", 0L, 2, 1, 3));
        return w.AddNode("Reshape", new[] { merged, w.AddLongs(name + ".merge_shape", 0, 0, Config.HiddenSize) }, name + ".context");
    }
}

/// <summary>
/// ONNX Runtime's <c>MultiHeadAttention</c> (com.microsoft): the three projections stay MatMuls (so quantization
/// still turns them into int8 kernels) and their biases, the head split, scaling, masking, softmax and head merge
/// all happen inside one node, which takes the padding mask directly as [batch, sequence] int32.
/// </summary>
internal sealed class FusedSelfAttention : SelfAttentionExporter
{
    private readonly string _mask;

    public FusedSelfAttention(IOnnxGraphWriter w, BertConfig config, string attentionMask, string name) : base(w, config) =>
        _mask = w.AddNode("Cast", new[] { attentionMask }, name + ".mask_int32", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Int32));

    public override string SelfAttention(Linear query, Linear key, Linear value, string x, string name)
    {
        var w = Writer;
        string q = LinearExporter.MatMul(w, query, x, name + ".query");
        string k = LinearExporter.MatMul(w, key, x, name + ".key");
        string v = LinearExporter.MatMul(w, value, x, name + ".value");
        // The operator adds the three biases itself, as one [3 · hidden] vector in query, key, value order.
        using var scope = torch.NewDisposeScope(); // the joined bias (and any zero bias) are temporaries
        var bias = torch.cat(new[] { Bias(query), Bias(key), Bias(value) });
        return w.AddOnnxRuntimeNode("MultiHeadAttention", new[] { q, k, v, w.AddFloats(name + ".qkv_bias", bias), _mask }, name + ".context",
            NodeAttribute.Of("num_heads", (long)Config.Heads),
            // The encoder masks with −1e9 (its default scale 1/√d is the operator's too); ONNX Runtime's default is −10,000.
            NodeAttribute.Of("mask_filter_value", -1e9f));
    }

    private static Tensor Bias(Linear projection) => projection.bias ?? torch.zeros(projection.weight!.shape[0]);
}
