using MLExtensions.Multimodal;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// CLIP's towers and the models built on them: the image preprocessing (bicubic resize and centre crop as two constant
/// matrices), the ViT image tower, the causal text tower with its end-token pooling, the projections and L2 normalization,
/// the LiT image side (locked ResNet-18 features → projection) and the zero-shot head (class embeddings × temperature).
/// Submodules are found by their Hugging Face state-dict names (the networks keep them so checkpoints load), and the
/// layers reuse the BERT exporters' pieces: <see cref="LinearExporter"/>, <see cref="LayerNormExporter"/>,
/// <see cref="SelfAttentionExporter"/>, <see cref="ActivationExporter"/>.
/// </summary>
internal static class ClipExporter
{
    /// <summary>Raw RGB pixels [N, 3·H·W] (0–255) → normalized CLIP image embeddings [N, D].</summary>
    public static string ImageEmbedding(IOnnxGraphWriter w, ClipImageEncoder encoder, string pixels, string name)
    {
        string x = Preprocess(w, encoder.Preprocess, pixels, name + ".preprocess");
        x = VisionTower(w, encoder.Clip, x, name + ".vision_model");
        x = LinearExporter.Export(w, encoder.Clip.VisualProjection, x, name + ".visual_projection");
        return Normalize(w, x, name + ".normalize");
    }

    /// <summary>Token ids [N, L] int64 (L ≤ the context length) → normalized CLIP text embeddings [N, D].</summary>
    public static string TextEmbedding(IOnnxGraphWriter w, ClipNetwork clip, string ids, string name)
    {
        string x = TextTower(w, clip, ids, name + ".text_model");
        x = LinearExporter.Export(w, clip.TextProjection, x, name + ".text_projection");
        return Normalize(w, x, name + ".normalize");
    }

    /// <summary>Raw pixels → normalized LiT image embeddings: the locked ResNet-18's features, then the trained projection.</summary>
    public static string LitImageEmbedding(ModuleExporter exporter, LitNetwork lit, string pixels, string name)
    {
        string features = ImageNetworkExporter.ExportFeatures(exporter, lit.ImageTower, pixels, name + ".image_tower");
        string projected = LinearExporter.Export(exporter.Writer, lit.Projection.ImageProjection, features, name + ".image_projection");
        return Normalize(exporter.Writer, projected, name + ".normalize");
    }

    /// <summary>Raw pixels → zero-shot logits: exp(logit_scale) · embedding · class embeddingsᵀ.</summary>
    public static string ZeroShot(ModuleExporter exporter, ZeroShotNetwork network, string pixels, string name)
    {
        var w = exporter.Writer;
        string image = network.ImageEncoder switch
        {
            ClipImageEncoder clip => ImageEmbedding(w, clip, pixels, name + ".image_encoder"),
            LitImageEncoder lit => LitImageEmbedding(exporter, lit.Lit, pixels, name + ".image_encoder"),
            var other => throw new NotSupportedException($"ONNX export does not support the zero-shot image encoder {other.GetType().Name}."),
        };
        using var classesT = network.ClassEmbeddings.t();
        string cosine = w.AddNode("MatMul", new[] { image, w.AddFloats(name + ".class_embeddings_t", classesT) }, name + ".cosine");
        float scale;
        using (var s = ((IJointImageEncoder)network.ImageEncoder).LogitScale())
            scale = s.item<float>();
        return w.AddNode("Mul", new[] { cosine, w.AddScalar(name + ".logit_scale", scale) }, name);
    }

    /// <summary>
    /// <see cref="ClipImagePreprocessor"/>: [N, 3·H·W] → [N, 3, R, R]. The antialiased bicubic resize is linear and separable,
    /// so it is exactly a product with a constant matrix on each side (rows × image × columnsᵀ); the centre crop keeps
    /// rows of those matrices. The matrices are made by TorchSharp's own interpolation of identity images, so the weights
    /// are the ones the TorchSharp model uses (opset 17's Resize has no antialiasing).
    /// </summary>
    public static string Preprocess(IOnnxGraphWriter w, ClipImagePreprocessor p, string pixels, string name)
    {
        string x = w.AddNode("Reshape", new[] { pixels, w.AddLongs(name + ".shape", -1, 3, p.Height, p.Width) }, name + ".images");
        x = w.AddNode("Mul", new[] { x, w.AddScalar(name + ".to_unit", 1f / 255f) }, name + ".unit");
        bool resizes = p.ResizedHeight != p.Height || p.ResizedWidth != p.Width;
        if (resizes || p.ResizedHeight != p.Resolution || p.ResizedWidth != p.Resolution)
        {
            using var scope = torch.NewDisposeScope();
            // Rows: [ResizedHeight, Height] applied on the left; columns: [Width, ResizedWidth] on the right.
            var rows = ResizeMatrix(p.Height, p.ResizedHeight, resizes).narrow(0, p.CropTop, p.Resolution);
            var columns = ResizeMatrix(p.Width, p.ResizedWidth, resizes).narrow(0, p.CropLeft, p.Resolution).t();
            x = w.AddNode("MatMul", new[] { w.AddFloats(name + ".rows", rows.contiguous()), x }, name + ".resize_rows");
            x = w.AddNode("MatMul", new[] { x, w.AddFloats(name + ".columns", columns.contiguous()) }, name + ".resize_columns");
            if (resizes) // PIL works on 8-bit images: bicubic overshoot is clamped, as in the TorchSharp module.
                x = w.AddNode("Clip", new[] { x, w.AddScalar(name + ".min", 0f), w.AddScalar(name + ".max", 1f) }, name + ".clamped");
        }
        var mean = ClipImagePreprocessor.Mean;
        var invStd = ClipImagePreprocessor.Std.Select(s => 1f / s).ToArray();
        x = w.AddNode("Sub", new[] { x, w.AddInitializer(name + ".mean", mean, new long[] { 1, 3, 1, 1 }) }, name + ".centred");
        return w.AddNode("Mul", new[] { x, w.AddInitializer(name + ".inv_std", invStd, new long[] { 1, 3, 1, 1 }) }, name);
    }

    /// <summary>[to, from]: the resize of one axis from <paramref name="from"/> to <paramref name="to"/> samples, as a matrix.</summary>
    private static Tensor ResizeMatrix(int from, int to, bool resizes)
    {
        using var noGrad = torch.no_grad();
        if (!resizes)
            return torch.eye(from);
        // Each column of an identity image is one input sample; resizing only the height gives that sample's output weights.
        // The width is left unchanged, which the bicubic kernel reproduces exactly (its weights at ±1, ±2 are 0).
        using var identity = torch.eye(from).view(1, 1, from, from);
        return nn.functional.interpolate(identity, new long[] { to, from }, null, InterpolationMode.Bicubic, align_corners: false, antialias: true).view(to, from);
    }

    /// <summary><see cref="ClipVisionTransformer"/>: normalized pixels [N, 3, R, R] → pooled class-token state [N, hidden].</summary>
    private static string VisionTower(IOnnxGraphWriter w, ClipNetwork clip, string pixels, string name)
    {
        var config = clip.Config.Vision;
        var modules = clip.named_modules().ToDictionary(m => m.name, m => m.module);
        var classEmbedding = clip.named_parameters().Single(p => p.name == "vision_model.embeddings.class_embedding").parameter;
        int hidden = config.HiddenSize;

        string patches = ConvolutionExporter.Export(w, (Conv2d)modules["vision_model.embeddings.patch_embedding"], pixels, name + ".patch_embedding");
        string flat = w.AddNode("Reshape", new[] { patches, w.AddLongs(name + ".flat_shape", 0, hidden, -1) }, name + ".patches_flat");
        string tokens = w.AddNode("Transpose", new[] { flat }, name + ".patches", NodeAttribute.IntList("perm", 0L, 2, 1)); // [N, grid², H]
        // The class token, repeated for every image of the batch: Expand to [N, 1, H].
        string batch = w.AddNode("Slice", new[] { w.AddNode("Shape", new[] { tokens }, name + ".shape"), w.AddLongs(name + ".zero", 0), w.AddLongs(name + ".one", 1) }, name + ".batch");
        string classShape = w.AddNode("Concat", new[] { batch, w.AddLongs(name + ".class_dims", 1, hidden) }, name + ".class_shape", NodeAttribute.Of("axis", 0L));
        string classToken = w.AddNode("Expand", new[] { w.AddFloats(name + ".class_embedding", classEmbedding, new long[] { 1, 1, hidden }), classShape }, name + ".class_token");
        string x = w.AddNode("Concat", new[] { classToken, tokens }, name + ".tokens", NodeAttribute.Of("axis", 1L));
        x = w.AddNode("Add", new[] { x, w.AddFloats(name + ".position_embedding", ((Embedding)modules["vision_model.embeddings.position_embedding"]).weight!) }, name + ".embeddings");
        x = LayerNormExporter.Export(w, (LayerNorm)modules["vision_model.pre_layrnorm"], x, name + ".pre_layrnorm");

        var attention = SelfAttentionExporter.Unmasked(w, config.Heads, hidden, name);
        x = Encoder(w, config, modules, "vision_model.encoder", attention, x, name + ".encoder");
        string pooled = w.AddNode("Gather", new[] { x, w.AddInitializer(name + ".class_index", new long[] { 0 }, Array.Empty<long>()) }, name + ".class_state", NodeAttribute.Of("axis", 1L));
        return LayerNormExporter.Export(w, (LayerNorm)modules["vision_model.post_layernorm"], pooled, name + ".post_layernorm");
    }

    /// <summary><see cref="ClipTextTransformer"/>: token ids [N, L] → the final state at the end token [N, hidden].</summary>
    private static string TextTower(IOnnxGraphWriter w, ClipNetwork clip, string ids, string name)
    {
        var config = clip.Config.Text;
        var modules = clip.named_modules().ToDictionary(m => m.name, m => m.module);
        string words = w.AddNode("Gather", new[] { w.AddFloats(name + ".token_embedding", ((Embedding)modules["text_model.embeddings.token_embedding"]).weight!), ids }, name + ".tokens");
        string shape = w.AddNode("Shape", new[] { ids }, name + ".ids_shape");
        string length = w.AddNode("Slice", new[] { shape, w.AddLongs(name + ".one", 1), w.AddLongs(name + ".two", 2) }, name + ".length");
        string zero = w.AddLongs(name + ".zero", 0);
        string positions = w.AddNode("Slice", new[] { w.AddFloats(name + ".position_table", ((Embedding)modules["text_model.embeddings.position_embedding"]).weight!), zero, length, zero }, name + ".positions");
        string x = w.AddNode("Add", new[] { words, positions }, name + ".embeddings");

        // The causal mask of the longest context, cut to [L, L]: each token sees itself and the tokens before it.
        int max = config.MaxPositions;
        var causal = new float[max * max];
        for (int i = 0; i < max; i++)
            for (int j = i + 1; j < max; j++)
                causal[i * max + j] = -1e9f; // RootedScalars.MaskedScore, as the TorchSharp tower
        string ends = w.AddNode("Concat", new[] { length, length }, name + ".mask_ends", NodeAttribute.Of("axis", 0L));
        string mask = w.AddNode("Slice", new[] { w.AddInitializer(name + ".causal_table", causal, new long[] { max, max }), w.AddLongs(name + ".mask_starts", 0, 0), ends, w.AddLongs(name + ".mask_axes", 0, 1) }, name + ".causal_mask");

        var attention = SelfAttentionExporter.WithAdditiveMask(w, config.Heads, config.HiddenSize, mask);
        x = Encoder(w, config, modules, "text_model.encoder", attention, x, name + ".encoder");
        x = LayerNormExporter.Export(w, (LayerNorm)modules["text_model.final_layer_norm"], x, name + ".final_layer_norm");

        // The pooled position: the largest id (legacy rule: the end token has the largest id) or the first end token.
        // ArgMax runs on float (ids < 2²⁴ are exact) and returns the first maximum, as TorchSharp's argmax.
        string key = config.Pooling == ClipTextPooling.ArgmaxId
            ? ids
            : w.AddNode("Equal", new[] { ids, w.AddInitializer(name + ".eos", new long[] { config.EosTokenId }, Array.Empty<long>()) }, name + ".is_eos");
        string keyFloat = w.AddNode("Cast", new[] { key }, name + ".pool_key", NodeAttribute.Of("to", (long)global::Onnx.TensorProto.Types.DataType.Float));
        string position = w.AddNode("ArgMax", new[] { keyFloat }, name + ".pool_position", NodeAttribute.Of("axis", -1L), NodeAttribute.Of("keepdims", 1L));
        return w.AddNode("GatherND", new[] { x, position }, name + ".pooled", NodeAttribute.Of("batch_dims", 1L));
    }

    /// <summary>The <see cref="ClipEncoderLayer"/>s under <paramref name="path"/>: pre-LayerNorm attention and MLP, each added to the residual.</summary>
    private static string Encoder(IOnnxGraphWriter w, ClipTowerConfig config, Dictionary<string, nn.Module> modules, string path, SelfAttentionExporter attention, string x, string name)
    {
        for (int i = 0; i < config.Layers; i++)
        {
            string layer = $"{path}.layers.{i}", node = $"{name}.layers{i}";
            Linear Dense(string suffix) => (Linear)modules[$"{layer}.{suffix}"];
            LayerNorm Norm(string suffix) => (LayerNorm)modules[$"{layer}.{suffix}"];

            string h = LayerNormExporter.Export(w, Norm("layer_norm1"), x, node + ".layer_norm1");
            h = attention.SelfAttention(Dense("self_attn.q_proj"), Dense("self_attn.k_proj"), Dense("self_attn.v_proj"), h, node + ".self_attn");
            h = LinearExporter.Export(w, Dense("self_attn.out_proj"), h, node + ".self_attn.out_proj");
            x = w.AddNode("Add", new[] { x, h }, node + ".attention_residual");

            h = LayerNormExporter.Export(w, Norm("layer_norm2"), x, node + ".layer_norm2");
            h = LinearExporter.Export(w, Dense("mlp.fc1"), h, node + ".mlp.fc1");
            h = config.Activation == ClipActivation.QuickGelu ? QuickGelu(w, h, node + ".mlp.act") : ActivationExporter.Gelu(w, h, node + ".mlp.act");
            h = LinearExporter.Export(w, Dense("mlp.fc2"), h, node + ".mlp.fc2");
            x = w.AddNode("Add", new[] { x, h }, node + ".mlp_residual");
        }
        return x;
    }

    /// <summary>OpenAI's quick GELU: x · σ(1.702 · x).</summary>
    private static string QuickGelu(IOnnxGraphWriter w, string x, string name)
    {
        string scaled = w.AddNode("Mul", new[] { x, w.AddScalar(name + ".factor", 1.702f) }, name + ".scaled");
        string gate = w.AddNode("Sigmoid", new[] { scaled }, name + ".gate");
        return w.AddNode("Mul", new[] { x, gate }, name);
    }

    /// <summary>x / max(‖x‖₂, 1e-12) over the last axis, as <c>nn.functional.normalize</c>.</summary>
    public static string Normalize(IOnnxGraphWriter w, string x, string name)
    {
        string norm = w.AddNode("ReduceL2", new[] { x }, name + ".norm", NodeAttribute.IntList("axes", -1L), NodeAttribute.Of("keepdims", 1L));
        string clamped = w.AddNode("Max", new[] { norm, w.AddScalar(name + ".eps", 1e-12f) }, name + ".norm_clamped");
        return w.AddNode("Div", new[] { x, clamped }, name);
    }
}
