using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// The parts of a plain CNN, as torchvision's VGG and AlexNet arrange them: <c>features</c> (convolutions,
/// activations, pooling), <c>avgpool</c> (adaptive average pooling to a fixed size) and <c>classifier</c>
/// (dense layers whose last child is the head).
/// </summary>
/// <param name="Features">Convolutional part; children numbered 0, 1, ….</param>
/// <param name="PooledHeight">Height the adaptive pooling produces.</param>
/// <param name="PooledWidth">Width the adaptive pooling produces.</param>
/// <param name="Classifier">Dense part; its last child must be a <see cref="Linear"/> layer (the head).</param>
public sealed record SequentialLayout(Sequential Features, long PooledHeight, long PooledWidth, Sequential Classifier);

/// <summary>
/// Base class of the plain CNNs (DefaultCnn, LeNet-5, AlexNet, VGG): features → adaptive average pooling →
/// flatten → dense layers → head, with torchvision's names <c>features.N.*</c> and <c>classifier.N.*</c>.
/// </summary>
/// <remarks>
/// <see cref="ImageNetwork.ExtractFeatures"/> runs everything up to the input of the last linear layer,
/// hidden dense layers included. Stages are the convolutional blocks, each ending with a max pooling layer,
/// then the hidden dense layers.
/// </remarks>
public abstract class SequentialImageNetwork : ImageNetwork
{
    // Field names are torchvision's state-dict keys (TorchSharp registers fields by name), hence lower case.
#pragma warning disable IDE1006
    private readonly Sequential features;
    private readonly AdaptiveAvgPool2d avgpool;
    private Sequential classifier;
#pragma warning restore IDE1006

    // Views sharing the modules above (not registered: an array field is not a module): the convolutional
    // blocks, then the hidden dense layers. Never dispose them: disposing a view disposes the shared modules.
    private readonly Sequential[] _stages;

    /// <summary>Builds the network and draws its weights.</summary>
    /// <param name="name">Module name.</param>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="generator">Source of initial weights and dropout masks; null uses a generator seeded with 0.</param>
    /// <param name="build">Creates the layers; receives the generator the dropout layers must use.</param>
    protected SequentialImageNetwork(string name, int inputChannels, Generator? generator, Func<Generator, SequentialLayout> build)
        : base(name)
    {
        var resolved = GeneratorOrDefault(generator);
        var layout = build(resolved);
        if (layout.Classifier.Count == 0 || layout.Classifier[layout.Classifier.Count - 1] is not Linear)
            throw new ArgumentException("The classifier must end with a linear layer.", nameof(build));
        InputChannels = inputChannels;
        features = layout.Features;
        avgpool = nn.AdaptiveAvgPool2d(new[] { layout.PooledHeight, layout.PooledWidth });
        classifier = layout.Classifier;
        RegisterComponents();
        _stages = SplitAfterPooling(features).Append(classifier[..^1]).ToArray();
        ResetParameters(resolved);
    }

    /// <inheritdoc />
    public override int InputChannels { get; }

    /// <inheritdoc />
    public override int FeatureSize => (int)HeadLayer.in_features;

    /// <inheritdoc />
    public override int ClassCount => (int)HeadLayer.out_features;

    /// <inheritdoc />
    public override IReadOnlyList<nn.Module> Stages => _stages;

    /// <inheritdoc />
    public override nn.Module Head => HeadLayer;

    private Linear HeadLayer => (Linear)classifier[classifier.Count - 1];

    /// <inheritdoc />
    public override Tensor ExtractFeatures(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var pooled = avgpool.call(features.call(images)).flatten(1);
        var hiddenDenseLayers = _stages[^1];
        return hiddenDenseLayers.call(pooled).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor Classify(Tensor features) => HeadLayer.call(features);

    /// <inheritdoc />
    protected override void SetHead(Linear head)
    {
        // TorchSharp's Sequential cannot swap a child, so the classifier is rebuilt around the same hidden
        // layers. The old container is not disposed: that would dispose the hidden layers it shares.
        var children = classifier.named_children()
            .Select(child => (child.name, (nn.Module<Tensor, Tensor>)child.module))
            .ToList();
        children[^1] = (children[^1].name, head);
        classifier = nn.Sequential(children);
        ReplaceSubmodule(nameof(classifier), classifier);
    }

    private static IEnumerable<Sequential> SplitAfterPooling(Sequential features)
    {
        int start = 0;
        for (int i = 0; i < features.Count; i++)
        {
            if (features[i] is MaxPool2d || i == features.Count - 1)
            {
                yield return features[start..(i + 1)];
                start = i + 1;
            }
        }
    }
}
