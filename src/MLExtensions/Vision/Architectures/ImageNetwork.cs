using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
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

    /// <summary>
    /// The head's name in the state dict (<c>fc</c> for ResNet, <c>classifier.6</c> for VGG/AlexNet): its
    /// parameters are <c>{HeadName}.weight</c> and <c>{HeadName}.bias</c>.
    /// </summary>
    public string HeadName
    {
        get
        {
            var head = Head;
            foreach (var (name, module) in named_modules())
            {
                if (ReferenceEquals(module, head))
                    return name;
            }
            throw new InvalidOperationException($"{GetType().Name}: the head is not a registered submodule.");
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        return Classify(ExtractFeatures(images)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Replaces the head by a new, freshly initialised linear layer with <paramref name="classes"/> outputs,
    /// under the same state-dict name, on the old head's device and dtype and in the network's current mode.
    /// The backbone is untouched. Used to fine-tune a network pretrained on another label set.
    /// </summary>
    /// <param name="classes">Outputs of the new head, at least 1.</param>
    /// <param name="generator">Source of the new weights; null uses a generator seeded with 0.</param>
    public void ReplaceHead(int classes, Generator? generator)
    {
        if (classes < 1)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, "The head needs at least one output.");
        var old = Head;
        var like = old.parameters().First();
        var head = nn.Linear(FeatureSize, classes);
        SeededInitialization.Apply(head, GeneratorOrDefault(generator));
        head.to(like.device, like.dtype);
        head.train(training);
        SetHead(head);
        old.Dispose();
    }

    /// <summary>
    /// Re-draws every weight from <paramref name="generator"/>: linear and convolution layers as PyTorch does
    /// by default (<see cref="SeededInitialization"/>), batch norm with weight 1, bias 0 and fresh running statistics.
    /// </summary>
    public void ResetParameters(Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        SeededInitialization.Apply(this, generator);
        using var noGrad = torch.no_grad();
        foreach (var (_, module) in named_modules())
        {
            if (module is BatchNorm2d norm)
                norm.reset_parameters();
        }
    }

    /// <summary>Puts <paramref name="head"/> where the current head is registered, under the same name.</summary>
    /// <remarks>Called by <see cref="ReplaceHead"/>, which disposes the old head afterwards.</remarks>
    protected abstract void SetHead(Linear head);

    /// <summary>Swaps the registered submodule <paramref name="name"/> for <paramref name="module"/>, keeping the name.</summary>
    /// <remarks>TorchSharp refuses to register a name twice; registering null first removes the old entry.</remarks>
    protected void ReplaceSubmodule(string name, nn.Module module)
    {
        register_module(name, null!);
        register_module(name, module);
    }

    /// <summary>The given generator, or one seeded with 0, so that a network built without a generator is still reproducible.</summary>
    protected static Generator GeneratorOrDefault(Generator? generator) => generator ?? new Generator(0, CPU);
}
