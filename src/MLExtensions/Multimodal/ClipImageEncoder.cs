using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Raw RGB pixels (0–255, C×H×W) → L2-normalized joint-space image embeddings: <see cref="ClipImagePreprocessor"/>,
/// then the CLIP image tower and its projection. The preprocessing is part of the module, so it is saved with the weights.
/// </summary>
internal sealed class ClipImageEncoder : nn.Module<Tensor, Tensor>
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

    public override Tensor forward(Tensor raw)
    {
        using var scope = torch.NewDisposeScope();
        var features = clip.EncodeImage(preprocess.call(raw));
        return nn.functional.normalize(features, 2.0, 1L).MoveToOuterDisposeScope();
    }
}
