using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// The CLIP network: the <see cref="ClipVisionTransformer"/> and <see cref="ClipTextTransformer"/> towers, their linear
/// projections (no bias) into the joint space, and the learned log temperature <c>logit_scale</c>. Parameter names
/// are Hugging Face's <c>CLIPModel</c> names, so such checkpoints load by name (OpenAI's are renamed by <see cref="ClipWeights"/>).
/// </summary>
internal sealed class ClipNetwork : nn.Module
{
#pragma warning disable IDE1006 // field names are checkpoint keys
    private readonly ClipTextTransformer text_model;
    private readonly ClipVisionTransformer vision_model;
    private readonly Linear visual_projection;
    private readonly Linear text_projection;
    private readonly Parameter logit_scale;
#pragma warning restore IDE1006

    public ClipNetwork(ClipConfig config) : base(nameof(ClipNetwork))
    {
        config.Validate();
        Config = config;
        text_model = new ClipTextTransformer(config.Text);
        vision_model = new ClipVisionTransformer(config.Vision);
        visual_projection = nn.Linear(config.Vision.HiddenSize, config.ProjectionDim, hasBias: false);
        text_projection = nn.Linear(config.Text.HiddenSize, config.ProjectionDim, hasBias: false);
        logit_scale = new Parameter(torch.tensor(MathF.Log(1f / 0.07f)));
        RegisterComponents();
    }

    public ClipConfig Config { get; }

    /// <summary>The learned log temperature (a scalar tensor, not a copy).</summary>
    public Tensor LogitScale => logit_scale;

    /// <summary>The image tower with its projection (for export and fine-tuning).</summary>
    public nn.Module<Tensor, Tensor> VisionModel => vision_model;

    /// <summary>The text tower (for export and fine-tuning).</summary>
    public nn.Module<Tensor, Tensor> TextModel => text_model;

    /// <summary>The image projection.</summary>
    public Linear VisualProjection => visual_projection;

    /// <summary>The text projection.</summary>
    public Linear TextProjection => text_projection;

    /// <summary>Normalized pixels [N, C, S, S] → image features [N, projection] (not normalized: OpenAI's <c>encode_image</c>).</summary>
    public Tensor EncodeImage(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        return visual_projection.call(vision_model.call(pixels)).MoveToOuterDisposeScope();
    }

    /// <summary>Token ids [N, L] → text features [N, projection] (not normalized: OpenAI's <c>encode_text</c>).</summary>
    public Tensor EncodeText(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        return text_projection.call(text_model.call(ids)).MoveToOuterDisposeScope();
    }
}
