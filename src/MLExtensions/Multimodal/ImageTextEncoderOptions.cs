using MLExtensions.Core;

namespace MLExtensions.Multimodal;

/// <summary>
/// Options of <c>mlContext.Transforms.ImageTextEncoder</c>: a LiT-style image/text dual encoder ("locked-image tuning",
/// Zhai et al. 2022) trained contrastively on (image, caption) rows. The image tower is the ImageNet ResNet-18 shipped with
/// ML.NET's featurizer package, locked (its features are computed once and cached); the text tower is MiniLM
/// (all-MiniLM-L6-v2, embedded, mean-pooled), also locked by this implementation so its features are cached too; linear
/// projections into a joint space of <see cref="ProjectionDimension"/> and CLIP's learned temperature are trained.
/// </summary>
public sealed class ImageTextEncoderOptions : NetworkTrainerOptions
{
    /// <summary>Creates the options with defaults suited to contrastive training (60 epochs, batch 128, Adam 1e-3).</summary>
    public ImageTextEncoderOptions()
    {
        Epochs = 60;
        BatchSize = 128;
        Optimizer.LearningRate = 1e-3;
        ValidationFraction = 0;
    }

    /// <summary>The image column: MLImage of a fixed size, or a pixel vector (Single 0–255 or Byte, C×H×W). Default "Image".</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>The caption column (text). Default "Caption".</summary>
    public string CaptionColumnName { get; set; } = "Caption";

    /// <summary>The image embedding column the fitted transformer adds. Default "ImageEmbedding".</summary>
    public string OutputColumnName { get; set; } = "ImageEmbedding";

    /// <summary>Size of the joint embedding space. Default 128. Ignored with <see cref="LockTextProjection"/> (the space is then MiniLM's, 384).</summary>
    public int ProjectionDimension { get; set; } = 128;

    /// <summary>
    /// Locks the text side completely: no trained text projection — the joint space is MiniLM's own sentence-embedding space
    /// (384 dimensions) and only the image projection and the temperature are trained, mapping images next to the names that
    /// describe them. A class name never seen in training then keeps exactly the place MiniLM gives it among the seen ones,
    /// instead of being sent through a projection fitted to the few training captions. Default false (both projections trained).
    /// </summary>
    public bool LockTextProjection { get; set; }

    /// <summary>Side of the square input of the ResNet-18 (images are resized bilinearly). Default 224, ImageNet's; smaller is much faster on a CPU.</summary>
    public int ImageInputSize { get; set; } = 224;

    /// <summary>Channels of a pixel-vector column (1 = gray, replicated to RGB; 3 = RGB). Default 3.</summary>
    public int? ImageChannels { get; set; }

    /// <summary>Height of the images of a pixel-vector column.</summary>
    public int? ImageHeight { get; set; }

    /// <summary>Width of the images of a pixel-vector column.</summary>
    public int? ImageWidth { get; set; }

    /// <summary>
    /// A CLIP model whose own two towers are fine-tuned instead (both trained, with the model's projections and its learned
    /// temperature, initialised from the checkpoint and used clamped at 100): the images go through CLIP's preprocessing,
    /// the captions through CLIP's tokenizer. Null (the default) trains the LiT encoder described above. The model itself is
    /// not changed (its weights are copied). With a real checkpoint use a small learning rate (e.g. 1e-5, CLIP's fine-tuning
    /// range; the default 1e-3 suits the small projections of LiT). <see cref="ProjectionDimension"/>, <see cref="ImageInputSize"/>,
    /// <see cref="LockTextProjection"/> and <see cref="ResNetWeightsPath"/> do not apply; images must be RGB.
    /// </summary>
    public ClipModel? ClipModel { get; set; }

    /// <summary>Optional path of ResNet18.onnx (or its folder) when it is not in the application folder or the NuGet cache.</summary>
    public string? ResNetWeightsPath { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check.NotEmpty(ImageColumnName, nameof(ImageColumnName));
        Check.NotEmpty(CaptionColumnName, nameof(CaptionColumnName));
        Check.NotEmpty(OutputColumnName, nameof(OutputColumnName));
        if (ProjectionDimension < 1)
            throw new ArgumentOutOfRangeException(nameof(ProjectionDimension), ProjectionDimension, "ProjectionDimension must be positive.");
        if (ImageInputSize < 32)
            throw new ArgumentOutOfRangeException(nameof(ImageInputSize), ImageInputSize, "ImageInputSize must be at least 32 (ResNet-18 downsamples 32 times).");
        if (ImageChannels is not (null or 1 or 3))
            throw new ArgumentOutOfRangeException(nameof(ImageChannels), ImageChannels, "ImageChannels must be 1 (gray) or 3 (RGB).");
        if (ClipModel is not null && LockTextProjection)
            throw new ArgumentException("LockTextProjection applies to the LiT towers; a ClipModel's towers are fine-tuned with both projections.", nameof(LockTextProjection));
        if (ClipModel is not null && ImageChannels is 1)
            throw new ArgumentOutOfRangeException(nameof(ImageChannels), ImageChannels, "A ClipModel's image tower needs RGB images (ImageChannels 3).");
        ClipModel?.ThrowIfDisposed();
        if (BatchSize < 2)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Contrastive training needs at least 2 rows per batch (the other rows are the negatives).");
    }
}
