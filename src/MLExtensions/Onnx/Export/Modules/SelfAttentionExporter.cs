using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Writes the multi-head self-attention of transformer layers (BERT's, CLIP's): softmax(q·kᵀ / √d + mask) · v per head,
/// heads concatenated. One instance per encoder, so the mask is prepared once for all layers.
/// </summary>
internal abstract class SelfAttentionExporter
{
    protected SelfAttentionExporter(IOnnxGraphWriter writer, int heads, int hiddenSize)
    {
        Writer = writer;
        Heads = heads;
        HiddenSize = hiddenSize;
    }

    /// <summary>The graph.</summary>
    protected IOnnxGraphWriter Writer { get; }

    /// <summary>Attention heads.</summary>
    protected int Heads { get; }

    /// <summary>Width of the hidden states (heads × head size).</summary>
    protected int HiddenSize { get; }

    /// <summary>BERT's padded attention: the fused form when the graph targets ONNX Runtime only, else the portable one.</summary>
    /// <param name="w">The graph.</param>
    /// <param name="config">The encoder's configuration (heads, width).</param>
    /// <param name="attentionMask">The [batch, sequence] int64 mask input (1 = token, 0 = padding).</param>
    /// <param name="name">Name prefix of the nodes.</param>
    public static SelfAttentionExporter For(IOnnxGraphWriter w, BertConfig config, string attentionMask, string name) =>
        w.TargetsOnnxRuntime
            ? new FusedSelfAttention(w, config.Heads, config.HiddenSize, attentionMask, name)
            : new PortableSelfAttention(w, config.Heads, config.HiddenSize, PortableSelfAttention.PaddingMask(w, attentionMask, name));

    /// <summary>Attention over every position (e.g. a ViT's patches): fused for ONNX Runtime, else portable.</summary>
    public static SelfAttentionExporter Unmasked(IOnnxGraphWriter w, int heads, int hiddenSize, string name) =>
        w.TargetsOnnxRuntime ? new FusedSelfAttention(w, heads, hiddenSize, null, name) : new PortableSelfAttention(w, heads, hiddenSize, null);

    /// <summary>
    /// Attention with an additive mask added to the scores (e.g. a causal [sequence, sequence] mask of 0 and −1e9, broadcast
    /// over batch and heads). Always the portable form: ONNX Runtime's fused operator takes padding masks, not this.
    /// </summary>
    public static SelfAttentionExporter WithAdditiveMask(IOnnxGraphWriter w, int heads, int hiddenSize, string additiveMask) =>
        new PortableSelfAttention(w, heads, hiddenSize, additiveMask);

    /// <summary>Emits the attention of <paramref name="x"/> [batch, sequence, hidden]; returns its output, same shape.</summary>
    public abstract string SelfAttention(Linear query, Linear key, Linear value, string x, string name);
}

/// <summary>Standard ONNX operators only: per-head Reshape/Transpose, MatMul, Softmax and an additive mask.</summary>
internal sealed class PortableSelfAttention : SelfAttentionExporter
{
    private readonly string? _mask;

    /// <param name="w">The graph.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="hiddenSize">Width of the hidden states.</param>
    /// <param name="additiveMask">Added to the [batch, heads, query, key] scores (broadcast); null for none.</param>
    public PortableSelfAttention(IOnnxGraphWriter w, int heads, int hiddenSize, string? additiveMask) : base(w, heads, hiddenSize) => _mask = additiveMask;

    /// <summary>Additive mask as in BertEncoder.forward: (1 − mask) · −1e9 as [batch, 1, 1, sequence], built once for all layers.</summary>
    public static string PaddingMask(IOnnxGraphWriter w, string attentionMask, string name)
    {
        string maskFloat = w.AddNode("Cast", new[] { attentionMask }, name + ".mask_float", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Float));
        string inverted = w.AddNode("Sub", new[] { w.AddScalar(name + ".one", 1f), maskFloat }, name + ".mask_inverted");
        string additive = w.AddNode("Mul", new[] { inverted, w.AddScalar(name + ".mask_value", -1e9f) }, name + ".mask_additive");
        return w.AddNode("Unsqueeze", new[] { additive, w.AddLongs(name + ".mask_axes", 1, 2) }, name + ".mask");
    }

    public override string SelfAttention(Linear query, Linear key, Linear value, string x, string name)
    {
        var w = Writer;
        int heads = Heads, headSize = HiddenSize / Heads;
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
        string masked = _mask is null ? scaled : w.AddNode("Add", new[] { scaled, _mask }, name + ".masked");
        string probabilities = w.AddNode("Softmax", new[] { masked }, name + ".probabilities", NodeAttribute.Of("axis", -1L));
        string context = w.AddNode("MatMul", new[] { probabilities, v }, name + ".context_heads");
        string merged = w.AddNode("Transpose", new[] { context }, name + ".context_merged", NodeAttribute.IntList("perm", 0L, 2, 1, 3));
        return w.AddNode("Reshape", new[] { merged, w.AddLongs(name + ".merge_shape", 0, 0, HiddenSize) }, name + ".context");
    }
}

/// <summary>
/// ONNX Runtime's <c>MultiHeadAttention</c> (com.microsoft): the three projections stay MatMuls (so quantization
/// still turns them into int8 kernels) and their biases, the head split, scaling, masking, softmax and head merge
/// all happen inside one node, which takes the padding mask directly as [batch, sequence] int32 (or no mask).
/// </summary>
internal sealed class FusedSelfAttention : SelfAttentionExporter
{
    private readonly string? _mask;

    public FusedSelfAttention(IOnnxGraphWriter w, int heads, int hiddenSize, string? attentionMask, string name) : base(w, heads, hiddenSize) =>
        _mask = attentionMask is null ? null : w.AddNode("Cast", new[] { attentionMask }, name + ".mask_int32", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Int32));

    public override string SelfAttention(Linear query, Linear key, Linear value, string x, string name)
    {
        var w = Writer;
        string q = LinearExporter.MatMul(w, query, x, name + ".query");
        string k = LinearExporter.MatMul(w, key, x, name + ".key");
        string v = LinearExporter.MatMul(w, value, x, name + ".value");
        // The operator adds the three biases itself, as one [3 · hidden] vector in query, key, value order.
        using var scope = torch.NewDisposeScope(); // the joined bias (and any zero bias) are temporaries
        var bias = torch.cat(new[] { Bias(query), Bias(key), Bias(value) });
        string qkvBias = w.AddFloats(name + ".qkv_bias", bias);
        var inputs = _mask is null ? new[] { q, k, v, qkvBias } : new[] { q, k, v, qkvBias, _mask };
        return w.AddOnnxRuntimeNode("MultiHeadAttention", inputs, name + ".context",
            NodeAttribute.Of("num_heads", (long)Heads),
            // The encoder masks with −1e9 (its default scale 1/√d is the operator's too); ONNX Runtime's default is −10,000.
            NodeAttribute.Of("mask_filter_value", -1e9f));
    }

    private static Tensor Bias(Linear projection) => projection.bias ?? torch.zeros(projection.weight!.shape[0]);
}
