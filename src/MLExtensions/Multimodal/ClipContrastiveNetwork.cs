using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Fine-tuning both towers of a <see cref="ClipModel"/> contrastively: each training row is [raw pixels | token ids] (the ids
/// stored as floats, exact below 2²⁴), the image side runs CLIP's preprocessing, ViT and projection, the text side the
/// causal text tower and projection, and the output is the batch's image×text logit matrix exp(logit_scale)·cosine — the
/// checkpoint's own learned temperature, used clamped at 100 as CLIP clamps it. Loss: <see cref="ContrastiveTask"/>.
/// </summary>
internal sealed class ClipContrastiveNetwork : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly ClipImageEncoder image_encoder;
#pragma warning restore IDE1006
    private readonly int _pixels;
    private readonly Scalar _maxLogitScale = ContrastiveProjection.MaxLogitScale;

    public ClipContrastiveNetwork(ClipNetwork clip, int height, int width) : base(nameof(ClipContrastiveNetwork))
    {
        image_encoder = new ClipImageEncoder(clip, height, width);
        _pixels = 3 * height * width;
        RegisterComponents();
    }

    /// <summary>The image side (preprocessing + the CLIP network, whose text tower the text side uses).</summary>
    public ClipImageEncoder ImageEncoder => image_encoder;

    public override Tensor forward(Tensor rows)
    {
        using var scope = torch.NewDisposeScope();
        var images = image_encoder.call(rows.narrow(1, 0, _pixels));
        var ids = rows.narrow(1, _pixels, rows.shape[1] - _pixels).to(ScalarType.Int64);
        var texts = nn.functional.normalize(image_encoder.Clip.EncodeText(ids), 2.0, 1L);
        var scale = image_encoder.Clip.LogitScale.clamp_max(_maxLogitScale).exp();
        return images.matmul(texts.t()).mul(scale).MoveToOuterDisposeScope();
    }
}
