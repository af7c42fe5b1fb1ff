using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Raw RGB pixels (0–255, C×H×W) → L2-normalized joint-space image embeddings: <see cref="ClipImagePreprocessor"/>,
/// then the CLIP image tower and its projection. The preprocessing is part of the module, so it is saved with the weights.
/// </summary>
internal sealed class ClipImageEncoder : nn.Module<Tensor, Tensor>, IJointImageEncoder
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly ClipImagePreprocessor preprocess;
    private readonly ClipNetwork clip;
#pragma warning restore IDE1006

    public ClipImageEncoder(ClipNetwork network, int height, int width) : base(nameof(ClipImageEncoder))
    {
        preprocess = new ClipImagePreprocessor(height, width, network.Config.Vision.ImageSize);
        clip = network;
        RegisterComponents();
    }

    public ClipNetwork Clip => clip;

    public ClipImagePreprocessor Preprocess => preprocess;

    public Tensor LogitScale() => clip.LogitScale.exp();

    public override Tensor forward(Tensor raw)
    {
        using var scope = torch.NewDisposeScope();
        var features = clip.EncodeImage(preprocess.call(raw));
        return nn.functional.normalize(features, 2.0, 1L).MoveToOuterDisposeScope();
    }
}

/// <summary>An image tower that maps raw pixels to normalized joint-space embeddings, with its model's temperature.</summary>
internal interface IJointImageEncoder
{
    /// <summary>exp(logit_scale): the factor from cosine similarity to logits (a scalar tensor the caller disposes).</summary>
    Tensor LogitScale();
}

/// <summary>The LiT image side for scoring: locked ResNet-18 features → trained projection → normalized embedding.</summary>
internal sealed class LitImageEncoder : nn.Module<Tensor, Tensor>, IJointImageEncoder
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly LitNetwork lit;
#pragma warning restore IDE1006

    public LitImageEncoder(LitNetwork network) : base(nameof(LitImageEncoder))
    {
        lit = network;
        RegisterComponents();
    }

    public LitNetwork Lit => lit;

    public Tensor LogitScale() => lit.Projection.Scale();

    public override Tensor forward(Tensor raw)
    {
        using var scope = torch.NewDisposeScope();
        return lit.Projection.ProjectImages(lit.ImageTower.ExtractFeatures(raw)).MoveToOuterDisposeScope();
    }
}
