using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>The image-classification architectures the library offers.</summary>
public enum ImageArchitecture
{
    /// <summary>A small CNN that trains fast on the CPU: two 3×3 conv blocks (32, 64 channels) with batch norm and max pooling, dropout, one hidden dense layer.</summary>
    DefaultCnn,

    /// <summary>LeNet-5 (LeCun et al. 1998) with ReLU and max pooling.</summary>
    LeNet5,

    /// <summary>An AlexNet-style network (five conv layers, three dense layers), scaled to the input size.</summary>
    AlexNet,

    /// <summary>VGG-11 (configuration "A"), optionally with batch norm and a width multiplier.</summary>
    Vgg11,

    /// <summary>VGG-16 (configuration "D"), optionally with batch norm and a width multiplier.</summary>
    Vgg16,

    /// <summary>ResNet-18 (basic blocks, [2, 2, 2, 2]); torchvision layout and parameter names.</summary>
    ResNet18,

    /// <summary>ResNet-34 (basic blocks, [3, 4, 6, 3]); torchvision layout and parameter names.</summary>
    ResNet34,

    /// <summary>ResNet-50 (bottleneck blocks, [3, 4, 6, 3]); torchvision layout and parameter names.</summary>
    ResNet50,

    /// <summary>The CIFAR-style ResNet-20 of He et al. (3 stages of 3 basic blocks, 16/32/64 channels), for small inputs on the CPU.</summary>
    ResNet20,
}

/// <summary>
/// A classification network split into a backbone (image → feature vector) and a head (feature vector → logits),
/// with the backbone's stages listed in order so fine-tuning can freeze and unfreeze them.
/// Input: a float tensor [N, C, H, W], already normalized. Output of <c>forward</c>: logits [N, classes].
/// </summary>
public abstract class ImageNetwork : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module with its name.</summary>
    protected ImageNetwork(string name) : base(name)
    {
    }

    /// <summary>Input channels the first layer takes.</summary>
    public abstract int InputChannels { get; }

    /// <summary>Length of the feature vector the backbone produces.</summary>
    public abstract int FeatureSize { get; }

    /// <summary>Number of classes the head produces.</summary>
    public abstract int ClassCount { get; }

    /// <summary>
    /// The backbone's stages from input to output (e.g. for ResNet: the stem, layer1..layer4). Fine-tuning
    /// unfreezes the last N of them.
    /// </summary>
    public abstract IReadOnlyList<nn.Module> Stages { get; }

    /// <summary>The classification head (a linear layer, or the last layer of a dense classifier for VGG/AlexNet).</summary>
    public abstract nn.Module Head { get; }

    /// <summary>Runs the backbone: images [N, C, H, W] → features [N, <see cref="FeatureSize"/>].</summary>
    public abstract Tensor ExtractFeatures(Tensor images);

    /// <summary>Runs the head: features → logits [N, <see cref="ClassCount"/>].</summary>
    public abstract Tensor Classify(Tensor features);

    /// <inheritdoc />
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        return Classify(ExtractFeatures(images)).MoveToOuterDisposeScope();
    }
}
