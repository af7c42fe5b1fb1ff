using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// CLIP's ViT image tower before the projection: patches by a strided convolution (no bias), a learned class token
/// in front, learned position embeddings, a LayerNorm before the <see cref="ClipEncoder"/> and one on the class
/// token's final state. Input: normalized pixels [N, C, S, S] with S the configured image size. Parameter names are
/// Hugging Face's <c>CLIPVisionTransformer</c> names (<c>pre_layrnorm</c> is spelled as there).
/// </summary>
internal sealed class ClipVisionTransformer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are checkpoint keys
    private readonly ClipVisionEmbeddings embeddings;
    private readonly LayerNorm pre_layrnorm;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm post_layernorm;
#pragma warning restore IDE1006

    public ClipVisionTransformer(ClipVisionConfig config) : base(nameof(ClipVisionTransformer))
    {
        embeddings = new ClipVisionEmbeddings(config);
        pre_layrnorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        encoder = new ClipEncoder(config);
        post_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>[N, C, S, S] → pooled class-token state [N, hidden].</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var x = pre_layrnorm.call(embeddings.call(pixels));
        x = encoder.call(x, null);
        return post_layernorm.call(x.select(1, 0)).MoveToOuterDisposeScope();
    }

    private sealed class ClipVisionEmbeddings : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Parameter class_embedding;
        private readonly Conv2d patch_embedding;
        private readonly Embedding position_embedding;
#pragma warning restore IDE1006

        public ClipVisionEmbeddings(ClipVisionConfig config) : base(nameof(ClipVisionEmbeddings))
        {
            class_embedding = new Parameter(torch.randn(config.HiddenSize));
            patch_embedding = nn.Conv2d(config.Channels, config.HiddenSize, config.PatchSize, stride: config.PatchSize, bias: false);
            position_embedding = nn.Embedding(config.Grid * config.Grid + 1, config.HiddenSize);
            RegisterComponents();
        }

        public override Tensor forward(Tensor pixels)
        {
            using var scope = torch.NewDisposeScope();
            var patches = patch_embedding.call(pixels).flatten(2).transpose(1, 2); // [N, grid², H]
            var cls = class_embedding.view(1, 1, -1).expand(patches.shape[0], 1, -1);
            var x = torch.cat(new[] { cls, patches }, 1);
            return x.add(position_embedding.weight!.unsqueeze(0), RootedScalars.One).MoveToOuterDisposeScope();
        }
    }
}
