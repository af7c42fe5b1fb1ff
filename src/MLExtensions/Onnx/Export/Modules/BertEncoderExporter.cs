using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// The BERT-family encoder (<see cref="BertEncoder"/>): embeddings (Gather for words and token types, a slice of
/// the position table), post-LayerNorm transformer layers (self-attention by <see cref="SelfAttentionExporter"/>,
/// portable or fused for ONNX Runtime), and the text classifier's pooling and head. Submodules are found by their
/// Hugging Face state-dict names, which the encoder keeps so checkpoints load; those names are the contract this
/// exporter relies on.
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
        string pooled = Pool(w, network.Pooling, hidden, inputs.Mask, name);
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
        var attention = SelfAttentionExporter.For(w, config, inputs.Mask, name);
        for (int i = 0; i < config.Layers; i++)
            x = Layer(w, config, modules, attention, $"encoder.layer.{i}", x, $"{name}.layer{i}");
        return x;
    }

    private static string Embeddings(IOnnxGraphWriter w, BertEncoder encoder, Dictionary<string, nn.Module> modules, TokenInputs inputs, string name)
    {
        string words = w.AddNode("Gather", new[] { w.AddFloats(name + ".word_embeddings", ((Embedding)modules["embeddings.word_embeddings"]).weight!), inputs.Ids }, name + ".words");
        if (modules.TryGetValue("embeddings.word_projection", out var projection)) // a low-rank table (BertConfig.WordEmbeddingRank)
            words = LinearExporter.Export(w, (Linear)projection, words, name + ".word_projection");
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

    private static string Layer(IOnnxGraphWriter w, BertConfig config, Dictionary<string, nn.Module> modules, SelfAttentionExporter attention, string path, string x, string name)
    {
        Linear Dense(string suffix) => (Linear)modules[$"{path}.{suffix}"];
        LayerNorm Norm(string suffix) => (LayerNorm)modules[$"{path}.{suffix}"];

        string context = attention.SelfAttention(Dense("attention.self.query"), Dense("attention.self.key"), Dense("attention.self.value"), x, name + ".attention");
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

    /// <summary>The [CLS] state or the mean over the unmasked tokens: [batch, sequence, hidden] → [batch, hidden].</summary>
    public static string Pool(IOnnxGraphWriter w, TextPooling pooling, string hidden, string attentionMask, string name) =>
        pooling == TextPooling.Cls
            ? w.AddNode("Gather", new[] { hidden, w.AddInitializer(name + ".cls_index", new long[] { 0 }, Array.Empty<long>()) }, name + ".cls", NodeAttribute.Of("axis", 1L))
            : MeanPool(w, hidden, attentionMask, name + ".mean_pool");

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
