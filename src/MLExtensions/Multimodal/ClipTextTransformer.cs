using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// CLIP's text tower before the projection: token + learned position embeddings, a causally masked
/// <see cref="ClipEncoder"/>, a final LayerNorm, and the state at the end token (see <see cref="ClipTextPooling"/>).
/// Parameter names are Hugging Face's <c>CLIPTextTransformer</c> names.
/// </summary>
internal sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are checkpoint keys
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;
#pragma warning restore IDE1006
    private readonly ClipTextConfig _config;

    public ClipTextTransformer(ClipTextConfig config) : base(nameof(ClipTextTransformer))
    {
        _config = config;
        embeddings = new ClipTextEmbeddings(config);
        encoder = new ClipEncoder(config);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>Token ids [N, L] (int64, L ≤ the context length) → pooled states [N, hidden].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        long length = ids.shape[1];
        var x = embeddings.call(ids);
        // Each token sees itself and the tokens before it; padding after the end token never reaches the pooled state.
        var causal = torch.ones(length, length, dtype: x.dtype, device: x.device).triu(1).mul(RootedScalars.MaskedScore);
        x = final_layer_norm.call(encoder.call(x, causal));
        var position = _config.Pooling == ClipTextPooling.ArgmaxId
            ? ids.argmax(-1)
            : ids.eq(_config.EosTokenId).to(ScalarType.Int32).argmax(-1); // argmax returns the first maximum
        var rows = torch.arange(ids.shape[0], dtype: ScalarType.Int64, device: ids.device);
        return x.index(rows, position).MoveToOuterDisposeScope();
    }

    private sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Embedding token_embedding;
        private readonly Embedding position_embedding;
#pragma warning restore IDE1006

        public ClipTextEmbeddings(ClipTextConfig config) : base(nameof(ClipTextEmbeddings))
        {
            token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize);
            position_embedding = nn.Embedding(config.MaxPositions, config.HiddenSize);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids)
        {
            using var scope = torch.NewDisposeScope();
            var positions = position_embedding.weight!.narrow(0, 0, ids.shape[1]);
            return token_embedding.call(ids).add(positions, RootedScalars.One).MoveToOuterDisposeScope();
        }
    }
}
