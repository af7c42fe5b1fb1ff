namespace MLExtensions.Vision;

/// <summary>
/// Architecture settings of an image network: what the network is, not how it is trained. Each setting
/// applies only to the architectures named in its documentation; the others ignore it.
/// </summary>
public sealed class ImageNetworkSettings
{
    /// <summary>
    /// Dropout rate of the dense layers, in [0, 1). Null (the default) uses the architecture's own rate:
    /// 0.25 for <see cref="ImageArchitecture.DefaultCnn"/>, 0.5 for AlexNet and VGG (as torchvision), 0 for LeNet-5.
    /// ResNets have no dropout.
    /// </summary>
    public double? Dropout { get; set; }

    /// <summary>
    /// VGG only: factor applied to every channel count and to the 4096-wide dense layers, in (0, 4].
    /// Default 1, which gives torchvision's layout and shapes. Smaller values (e.g. 0.25) make VGG practical
    /// on the CPU for small images.
    /// </summary>
    public double VggWidthMultiplier { get; set; } = 1.0;

    /// <summary>VGG only: batch norm after every convolution (torchvision's <c>vgg16_bn</c>). Default false (<c>vgg16</c>).</summary>
    public bool VggBatchNorm { get; set; }

    /// <summary>
    /// ResNet-18/34/50 and AlexNet: use a stem for small images. For ResNet that is a 3×3 convolution with
    /// stride 1 and no max pooling instead of the 7×7 stride-2 convolution and max pooling, for AlexNet a 3×3
    /// stride-1 first convolution, 2×2 pooling and 1024-wide dense layers. Null (the default) chooses the small
    /// stem when the shorter input side is below 64 pixels. ImageNet weights do not fit the small stem's
    /// first convolution. ResNet-20 always uses its own CIFAR stem.
    /// </summary>
    public bool? SmallInputStem { get; set; }

    /// <summary>
    /// DefaultCnn, LeNet-5, AlexNet and VGG: side of the adaptive average pooling before the dense layers, at
    /// least 1. Null (the default) keeps the last feature map's size up to torchvision's (7 for VGG, 6 for
    /// AlexNet, 8 for DefaultCnn, 5 for LeNet-5), so small inputs do not feed the dense layers replicated pixels.
    /// Set 7 (VGG) or 6 (AlexNet) to load torchvision weights into a network built for inputs below 224 pixels.
    /// </summary>
    public int? ClassifierPoolSize { get; set; }

    /// <summary>
    /// ResNet: basic/bottleneck blocks per stage instead of the architecture's standard ones (e.g. [2, 2, 2, 3] for
    /// the CNTK ImageNet ResNet-18 in <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>). Null keeps the standard
    /// layout. Default null.
    /// </summary>
    public int[]? ResNetBlocksPerStage { get; set; }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range; the message names it and the value found.</exception>
    public void Validate()
    {
        if (Dropout is { } p && (p < 0 || p >= 1 || double.IsNaN(p)))
            throw new ArgumentOutOfRangeException(nameof(Dropout), p, "Dropout must be in [0, 1).");
        if (!(VggWidthMultiplier > 0 && VggWidthMultiplier <= 4))
            throw new ArgumentOutOfRangeException(nameof(VggWidthMultiplier), VggWidthMultiplier, "VggWidthMultiplier must be in (0, 4].");
        if (ResNetBlocksPerStage is { } blocks && blocks.Any(b => b < 1))
            throw new ArgumentOutOfRangeException(nameof(ResNetBlocksPerStage), string.Join(", ", blocks), "ResNetBlocksPerStage entries must be at least 1.");
        if (ClassifierPoolSize is < 1)
            throw new ArgumentOutOfRangeException(nameof(ClassifierPoolSize), ClassifierPoolSize, "ClassifierPoolSize must be at least 1.");
    }

    /// <summary>Whether the small-input stem applies to an input of <paramref name="height"/> × <paramref name="width"/>.</summary>
    internal bool UsesSmallStem(int height, int width) => SmallInputStem ?? Math.Min(height, width) < 64;

    /// <summary>The pooled feature-map size: the setting if given, else the map's own size capped at <paramref name="cap"/>.</summary>
    internal (long Height, long Width) PooledSize(FeatureMapSize map, long cap) =>
        ClassifierPoolSize is { } side ? (side, side) : (Math.Min(map.Height, cap), Math.Min(map.Width, cap));
}
