using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// The BERT-family encoder (<see cref="BertEncoder"/>): embeddings (Gather for words and token types, a slice of
/// the position table), post-LayerNorm transformer layers with MatMul/Softmax attention and the additive padding
/// mask, and the text classifier's pooling and head. Submodules are found by their Hugging Face state-dict names,
/// which the encoder keeps so checkpoints load; those names are the contract this exporter relies on.
/// </summary>
internal static class BertEncoderExporter
{
    /// <summary>The token inputs, each [batch, sequence] int64.</summary>
    public sealed record TokenInputs(string Ids, string Mask, string Types);

    public static string ExportClassifier(ModuleExporter exporter, TextClassifierNetwork network, TokenInputs inputs, string name)
    {
        var w = exporter.Writer;
        var children = network.named_children().ToDictionary(c => c.name, c => c.module);
        string hidden = ExportEncoder(exporter, network.Encoder, inputs, name + ".encoder");
        string pooled = network.Pooling == TextPooling.Cls
            ? w.AddNode("Gather", new[] { hidden, w.AddInitializer(name + ".cls_index", new long[] { 0 }, Array.Empty<long>()) }, name + ".cls", NodeAttribute.Of("axis", 1L))
            : MeanPool(w, hidden, inputs.Mask, name + ".mean_pool");
        // The dropout between pooling and the classifier is the identity at inference.
        return LinearExporter.Export(w, (Linear)children["classifier"], pooled, name + ".classifier");
    }

    /// <summary>Emits the encoder; returns its last hidden states [batch, sequence, hidden].</summary>
    public static string ExportEncoder(ModuleExporter exporter, BertEncoder encoder, TokenInputs inputs, string name)
    {
        var w = exporter.Writer;
        var config = encoder.Config;
        var modules = encoder.named_modules().ToDictionary(m => m.name, m => m.module);
        string x = Embeddings(w, encoder, modules, inputs, name + ".embeddings");

        // Additive mask as in BertEncoder.forward: (1 − mask) · −1e9, broadcast over heads and query positions.
        string maskFloat = w.AddNode("Cast", new[] { inputs.Mask }, name + ".mask_float", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Float));
        string inverted = w.AddNode("Sub", new[] { w.AddScalar(name + ".one", 1f), maskFloat }, name + ".mask_inverted");
        string additive = w.AddNode("Mul", new[] { inverted, w.AddScalar(name + ".mask_value", -1e9f) }, name + ".mask_additive");
        string mask = w.AddNode("Unsqueeze", new[] { additive, w.AddLongs(name + ".mask_axes", 1, 2) }, name + ".mask");

        for (int i = 0; i < config.Layers; i++)
            x = Layer(w, config, modules, $"encoder.layer.{i}", x, mask, $"{name}.layer{i}");
        return x;
    }

    private static string Embeddings(IOnnxGraphWriter w, BertEncoder encoder, Dictionary<string, nn.Module> modules, TokenInputs inputs, string name)
    {
        string words = w.AddNode("Gather", new[] { w.AddFloats(name + ".word_embeddings", ((Embedding)modules["embeddings.word_embeddings"]).weight!), inputs.Ids }, name + ".words");
        string types = w.AddNode("Gather", new[] { w.AddFloats(name + ".token_type_embeddings", ((Embedding)modules["embeddings.token_type_embeddings"]).weight!), inputs.Types }, name + ".types");

        // Positions 0…L−1: the first L rows of the table (learned embedding or fixed sinusoids) — a Slice, since
        // gathering arange(L) from a table is the same as taking its first L rows.
        Tensor table = modules.TryGetValue("embeddings.position_embeddings", out var learned)
            ? ((Embedding)learned).weight!
            : encoder.named_buffers().Single(b => b.name == "embeddings.sinusoid").buffer;
        string shape = w.AddNode("Shape", new[] { inputs.Ids }, name + ".ids_shape");
        string length = w.AddNode("Slice", new[] { shape, w.AddLongs(name + ".one_start", 1), w.AddLongs(name + ".one_end", 2) }, name + ".length");
        string positions = w.AddNode("Slice", new[] { w.AddFloats(name + ".position_table", table), w.AddLongs(name + ".zero", 0), length, w.AddLongs(name + ".axis0", 0) }, name + ".positions");

        string sum = w.AddNode("Add", new[] { words, positions }, name + ".words_positions");
        sum = w.AddNode("Add", new[] { sum, types }, name + ".sum");
        return LayerNormExporter.Export(w, (LayerNorm)modules["embeddings.LayerNorm"], sum, name + ".LayerNorm");
    }

    private static string Layer(IOnnxGraphWriter w, BertConfig config, Dictionary<string, nn.Module> modules, string path, string x, string mask, string name)
    {
        Linear Dense(string suffix) => (Linear)modules[$"{path}.{suffix}"];
        LayerNorm Norm(string suffix) => (LayerNorm)modules[$"{path}.{suffix}"];

        string context = SelfAttention(w, config, Dense("attention.self.query"), Dense("attention.self.key"), Dense("attention.self.value"), x, mask, name + ".attention");
        string projected = LinearExporter.Export(w, Dense("attention.output.dense"), context, name + ".attention.output.dense");
        string residual = w.AddNode("Add", new[] { projected, x }, name + ".attention.output.residual");
        string attended = LayerNormExporter.Export(w, Norm("attention.output.LayerNorm"), residual, name + ".attention.output.LayerNorm");

        string inner = LinearExporter.Export(w, Dense("intermediate.dense"), attended, name + ".intermediate.dense");
        inner = config.HiddenActivation switch
        {
            "relu" => ActivationExporter.Relu(w, inner, name + ".intermediate.act"),
            "gelu_new" => ActivationExporter.GeluTanh(w, inner, name + ".intermediate.act"),
            _ => ActivationExporter.Gelu(w, inner, name + ".intermediate.act"),
        };
        string output = LinearExporter.Export(w, Dense("output.dense"), inner, name + ".output.dense");
        string outputResidual = w.AddNode("Add", new[] { output, attended }, name + ".output.residual");
        return LayerNormExporter.Export(w, Norm("output.LayerNorm"), outputResidual, name + ".output.LayerNorm");
    }

    /// <summary>softmax(q·kᵀ / √d + mask) · v per head; returns [batch, sequence, hidden].</summary>
    private static string SelfAttention(IOnnxGraphWriter w, BertConfig config, Linear query, Linear key, Linear value, string x, string mask, string name)
    {
        int heads = config.Heads, headSize = config.HiddenSize / config.Heads;
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
        string masked = w.AddNode("Add", new[] { scaled, mask }, name + ".masked");
        string probabilities = w.AddNode("Softmax", new[] { masked }, name + ".probabilities", NodeAttribute.Of("axis", -1L));
        string context = w.AddNode("MatMul", new[] { probabilities, v }, name + ".context_heads");
        string merged = w.AddNode("Transpose", new[] { context }, name + ".context_merged", NodeAttribute.IntList("perm", 0L, 2, 1, 3));
        return w.AddNode("Reshape", new[] { merged, w.AddLongs(name + ".merge_shape", 0, 0, config.HiddenSize) }, name + ".context");
    }

    /// <summary>Mean of the hidden states over the unmasked tokens, as <see cref="BertEncoder.MeanPool"/>.</summary>
    private static string MeanPool(IOnnxGraphWriter w, string hidden, string attentionMask, string name)
    {
        string maskFloat = w.AddNode("Cast", new[] { attentionMask }, name + ".mask_float", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Float));
        string mask = w.AddNode("Unsqueeze", new[] { maskFloat, w.AddLongs(name + ".last_axis", -1) }, name + ".mask");
        string masked = w.AddNode("Mul", new[] { hidden, mask }, name + ".masked");
        string tokensAxis = w.AddLongs(name + ".tokens_axis", 1);
        string sum = w.AddNode("ReduceSum", new[] { masked, tokensAxis }, name + ".sum", NodeAttribute.Of("keepdims", 0L));
        string count = w.AddNode("ReduceSum", new[] { mask, tokensAxis }, name + ".count", NodeAttribute.Of("keepdims", 0L));
        string clamped = w.AddNode("Max", new[] { count, w.AddScalar(name + ".min_count", 1e-9f) }, name + ".count_clamped");
        return w.AddNode("Div", new[] { sum, clamped }, name);
    }
}
