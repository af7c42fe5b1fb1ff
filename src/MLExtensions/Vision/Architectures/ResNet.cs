using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// Residual networks (He et al. 2015, "Deep Residual Learning for Image Recognition"): ResNet-18/34 (basic
/// blocks), ResNet-50 (bottleneck blocks, stride on the 3×3 convolution as torchvision's v1.5), and the
/// CIFAR-style ResNet-20 (three stages of three basic blocks, 16/32/64 channels).
/// </summary>
/// <remarks>
/// <para>
/// Module layout and parameter names follow torchvision's <c>torchvision/models/resnet.py</c>: <c>conv1</c>,
/// <c>bn1</c>, <c>layer1.0.conv1</c>, <c>layer1.0.downsample.0</c>, …, <c>fc</c>, so torchvision state dicts
/// load with <see cref="TorchvisionWeights"/>. ImageNet weights expect 3-channel 224×224 input normalised with
/// mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
/// </para>
/// <para>
/// Stem: the ImageNet stem (7×7 convolution with stride 2, then 3×3 max pooling with stride 2) divides the
/// image by 4 before the first block, which leaves 28×28 or 32×32 images almost nothing to work with. The
/// small-input stem is a 3×3 stride-1 convolution without pooling (as in the CIFAR experiments of the paper).
/// ResNet-20 always uses it. Its shortcuts project with a 1×1 convolution when the shape changes (the paper's
/// option B) rather than zero-padding, so all ResNets here share one block.
/// </para>
/// <para>Stages: the stem (conv1, bn1, ReLU, max pooling), then layer1 … layer4 (layer3 for ResNet-20).</para>
/// </remarks>
public sealed class ResNet : ImageNetwork
{
    // Field names are torchvision's state-dict keys (TorchSharp registers fields by name), hence lower case.
    // Declaration order is registration order, which is torchvision's module order.
#pragma warning disable IDE1006
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu; // torchvision's; registered (no parameters, no state-dict key) so that forward hooks reach the stem's ReLU
    private readonly MaxPool2d? maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential? layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private Linear fc;
#pragma warning restore IDE1006

    // The stem and the layers, in order. The stem groups modules that torchvision registers at the top level;
    // registering it as a container would rename their keys (stem.conv1…), and an array field is not registered.
    private readonly nn.Module<Tensor, Tensor>[] _stages;

    /// <summary>Builds the network with weights drawn from <paramref name="generator"/>.</summary>
    /// <param name="architecture"><see cref="ImageArchitecture.ResNet18"/>, <see cref="ImageArchitecture.ResNet34"/>, <see cref="ImageArchitecture.ResNet50"/> or <see cref="ImageArchitecture.ResNet20"/>.</param>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="smallInputStem">Use the 3×3 stride-1 stem without max pooling (ignored by ResNet-20, which always does).</param>
    /// <param name="generator">Source of the initial weights; null uses a generator seeded with 0.</param>
    /// <param name="blocksPerStage">Blocks per stage instead of the architecture's standard layout (same stage count); null keeps it.</param>
    public ResNet(ImageArchitecture architecture, int inputChannels, int classes, bool smallInputStem, Generator? generator, int[]? blocksPerStage = null)
        : base(architecture.ToString())
    {
        var layout = Layout.Of(architecture);
        if (blocksPerStage is not null)
        {
            if (blocksPerStage.Length != layout.Blocks.Length)
                throw new ArgumentOutOfRangeException(nameof(blocksPerStage), blocksPerStage.Length,
                    $"{architecture} has {layout.Blocks.Length} stages; ResNetBlocksPerStage has {blocksPerStage.Length} entries.");
            layout = layout with { Blocks = blocksPerStage };
        }
        Architecture = architecture;
        InputChannels = inputChannels;
        SmallInputStem = smallInputStem || architecture == ImageArchitecture.ResNet20;

        long stem = layout.Widths[0];
        if (SmallInputStem)
        {
            conv1 = Convolutions.Conv3x3(inputChannels, stem);
        }
        else
        {
            conv1 = nn.Conv2d(inputChannels, stem, kernel_size: 7, stride: 2, padding: 3, bias: false);
            maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        }
        bn1 = nn.BatchNorm2d(stem);
        relu = nn.ReLU();

        long channels = stem;
        var layers = new Sequential[layout.Blocks.Length];
        for (int i = 0; i < layers.Length; i++)
            layers[i] = MakeLayer(layout, ref channels, layout.Widths[i], layout.Blocks[i], stride: i == 0 ? 1 : 2);
        (layer1, layer2, layer3) = (layers[0], layers[1], layers[2]);
        layer4 = layers.Length > 3 ? layers[3] : null;
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc = nn.Linear(channels, classes);
        RegisterComponents();

        var stemView = maxpool is null
            ? nn.Sequential(("conv1", conv1), ("bn1", bn1), ("relu", relu))
            : nn.Sequential(("conv1", conv1), ("bn1", bn1), ("relu", relu), ("maxpool", maxpool));
        _stages = new nn.Module<Tensor, Tensor>[] { stemView }.Concat(layers).ToArray();
        ResetParameters(GeneratorOrDefault(generator));
    }

    /// <summary>Which ResNet this is.</summary>
    public ImageArchitecture Architecture { get; }

    /// <summary>Whether the network uses the small-input stem.</summary>
    public bool SmallInputStem { get; }

    /// <inheritdoc />
    public override int InputChannels { get; }

    /// <inheritdoc />
    public override int FeatureSize => (int)fc.in_features;

    /// <inheritdoc />
    public override int ClassCount => (int)fc.out_features;

    /// <inheritdoc />
    public override IReadOnlyList<nn.Module> Stages => _stages;

    /// <inheritdoc />
    public override nn.Module Head => fc;

    /// <inheritdoc />
    public override Tensor ExtractFeatures(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var x = images;
        foreach (var stage in _stages)
            x = stage.call(x);
        return avgpool.call(x).flatten(1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor Classify(Tensor features) => fc.call(features);

    /// <inheritdoc />
    protected override void SetHead(Linear head)
    {
        fc = head;
        ReplaceSubmodule(nameof(fc), fc);
    }

    private static Sequential MakeLayer(Layout layout, ref long channels, long width, int blocks, long stride)
    {
        var layer = nn.Sequential();
        for (int i = 0; i < blocks; i++)
        {
            // Only the first block of a layer changes the resolution (and usually the width).
            long blockStride = i == 0 ? stride : 1;
            layer.append(layout.UsesBottleneck
                ? new Bottleneck(channels, width, blockStride)
                : new BasicBlock(channels, width, blockStride));
            channels = width * (layout.UsesBottleneck ? Bottleneck.Expansion : BasicBlock.Expansion);
        }
        return layer;
    }

    /// <summary>Block type, blocks per layer and layer widths of each depth (Table 1 of the paper; §4.2 for ResNet-20).</summary>
    private sealed record Layout(bool UsesBottleneck, int[] Blocks, long[] Widths)
    {
        public static Layout Of(ImageArchitecture architecture) => architecture switch
        {
            ImageArchitecture.ResNet18 => new(false, new[] { 2, 2, 2, 2 }, new long[] { 64, 128, 256, 512 }),
            ImageArchitecture.ResNet34 => new(false, new[] { 3, 4, 6, 3 }, new long[] { 64, 128, 256, 512 }),
            ImageArchitecture.ResNet50 => new(true, new[] { 3, 4, 6, 3 }, new long[] { 64, 128, 256, 512 }),
            ImageArchitecture.ResNet20 => new(false, new[] { 3, 3, 3 }, new long[] { 16, 32, 64 }),
            _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Not a ResNet."),
        };
    }
}
