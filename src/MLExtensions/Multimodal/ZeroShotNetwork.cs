using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Raw pixels → zero-shot logits: <c>exp(logit_scale) · normalize(image) · classesᵀ</c>, with the class text
/// embeddings (normalized, prompt-ensembled) computed once at fit time and kept as a buffer, so they are saved with the weights.
/// </summary>
internal sealed class ZeroShotNetwork : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly nn.Module<Tensor, Tensor> image_encoder;
    private readonly Tensor class_embeddings;
#pragma warning restore IDE1006

    public ZeroShotNetwork(nn.Module<Tensor, Tensor> imageEncoder, Tensor classEmbeddings) : base(nameof(ZeroShotNetwork))
    {
        image_encoder = imageEncoder;
        class_embeddings = classEmbeddings;
        register_buffer(nameof(class_embeddings), class_embeddings);
        RegisterComponents();
    }

    /// <summary>A <see cref="ClipImageEncoder"/> or a <see cref="LitImageEncoder"/>.</summary>
    public nn.Module<Tensor, Tensor> ImageEncoder => image_encoder;

    /// <summary>The class embeddings [K, D] (not a copy).</summary>
    public Tensor ClassEmbeddings => class_embeddings;

    public override Tensor forward(Tensor raw)
    {
        using var scope = torch.NewDisposeScope();
        var image = image_encoder.call(raw);
        var scale = ((IJointImageEncoder)image_encoder).LogitScale();
        return image.matmul(class_embeddings.t()).mul(scale).MoveToOuterDisposeScope();
    }

    /// <summary>Per class: the normalized text embedding of every template, averaged, renormalized (CLIP's prompt ensembling).</summary>
    public static Tensor ClassEmbeddingsOf(IImageTextModel model, IReadOnlyList<string> classNames, IReadOnlyList<string> templates)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var rows = new List<Tensor>(classNames.Count);
        foreach (string name in classNames)
        {
            var prompts = templates.Select(t => (string?)t.Replace("{}", name, StringComparison.Ordinal)).ToList();
            var embeddings = torch.tensor(model.EmbedTexts(prompts).SelectMany(e => e).ToArray(), new long[] { prompts.Count, model.EmbeddingDimension });
            rows.Add(nn.functional.normalize(embeddings.mean(new long[] { 0 }), 2.0, 0L));
        }
        return torch.stack(rows).MoveToOuterDisposeScope();
    }
}
