using MLExtensions.Vision;
using Xunit;
using static MLExtensions.Tests.Vision.VisionTestNetworks;

namespace MLExtensions.Tests.Vision;

/// <summary>
/// State-dict layouts against torchvision's, so torchvision checkpoints keep loading. Counts include the batch-norm
/// buffers running_mean, running_var and num_batches_tracked, as PyTorch ≥ 0.4.1's state_dict() does.
/// </summary>
public class ImageNetworkLayoutTests
{
    // Building blocks of the counts below.
    private const int Conv = 1;            // weight (no bias: batch norm follows)
    private const int Norm = 5;            // weight, bias, running_mean, running_var, num_batches_tracked
    private const int Dense = 2;           // weight, bias
    private const int Basic = 2 * (Conv + Norm);          // conv1, bn1, conv2, bn2 = 12
    private const int BasicDown = Basic + Conv + Norm;    // + downsample.0, downsample.1 = 18
    private const int Neck = 3 * (Conv + Norm);           // conv1..3, bn1..3 = 18
    private const int NeckDown = Neck + Conv + Norm;      // = 24
    private const int Stem = Conv + Norm;                 // conv1, bn1 = 6

    public static TheoryData<ImageArchitecture, int, string[], string[]> ResNets => new()
    {
        // ResNet-18, blocks [2,2,2,2]: only layer1 keeps its shape, so layers 2-4 start with a projection.
        // 6 + 2·12 + 3·(18 + 12) + 2 = 122 (102 without the 20 num_batches_tracked).
        { ImageArchitecture.ResNet18, Stem + 2 * Basic + 3 * (BasicDown + Basic) + Dense,
            new[] { "layer1.1.bn2.running_var", "layer2.0.downsample.0.weight", "layer4.1.conv2.weight" },
            new[] { "layer1.0.downsample.0.weight", "layer1.2.conv1.weight", "layer1.0.conv3.weight" } },
        // ResNet-34, blocks [3,4,6,3]: 6 + 3·12 + (18 + 3·12) + (18 + 5·12) + (18 + 2·12) + 2 = 218.
        { ImageArchitecture.ResNet34, Stem + 3 * Basic + (BasicDown + 3 * Basic) + (BasicDown + 5 * Basic) + (BasicDown + 2 * Basic) + Dense,
            new[] { "layer3.5.bn2.num_batches_tracked", "layer4.2.conv2.weight" },
            new[] { "layer1.0.downsample.0.weight", "layer4.3.conv1.weight" } },
        // ResNet-50, bottlenecks [3,4,6,3]: every layer's first block projects (64 → 256 in layer1 too).
        // 6 + (24 + 2·18) + (24 + 3·18) + (24 + 5·18) + (24 + 2·18) + 2 = 320 (267 without the 53 num_batches_tracked).
        { ImageArchitecture.ResNet50, Stem + (NeckDown + 2 * Neck) + (NeckDown + 3 * Neck) + (NeckDown + 5 * Neck) + (NeckDown + 2 * Neck) + Dense,
            new[] { "layer1.0.downsample.0.weight", "layer1.0.conv3.weight", "layer4.2.bn3.running_mean" },
            new[] { "layer1.1.downsample.0.weight", "layer4.3.conv1.weight" } },
        // ResNet-20 (ours, not torchvision's): 3 layers of 3 basic blocks, projection shortcuts in layers 2-3.
        // 6 + 3·12 + 2·(18 + 2·12) + 2 = 128.
        { ImageArchitecture.ResNet20, Stem + 3 * Basic + 2 * (BasicDown + 2 * Basic) + Dense,
            new[] { "layer3.2.bn2.weight", "layer2.0.downsample.1.running_mean" },
            new[] { "layer4.0.conv1.weight", "layer1.0.downsample.0.weight" } },
    };

    [Theory]
    [MemberData(nameof(ResNets))]
    public void ResNetKeysAreTorchvisions(ImageArchitecture architecture, int entries, string[] present, string[] absent)
    {
        using var network = Create(architecture, 3, 32);
        var state = network.state_dict();
        var ordered = KeysInPyTorchOrder(network);

        Assert.Equal(entries, state.Count);
        Assert.Equal(state.Keys.Order(), ordered.Order());
        Assert.Equal("conv1.weight", ordered[0]);
        Assert.Equal("bn1.weight", ordered[1]);
        Assert.Equal("fc.weight", ordered[^2]);
        Assert.Equal("fc.bias", ordered[^1]);
        Assert.Equal("fc", network.HeadName);
        Assert.All(present, key => Assert.Contains(key, state.Keys));
        Assert.All(absent, key => Assert.DoesNotContain(key, state.Keys));
    }

    [Fact]
    public void ResNetParameterCountsMatchTorchvision()
    {
        // Parameter tensors only (what torchvision's model.parameters() yields): 62 for resnet18, 161 for resnet50.
        var imageNetStem = new ImageNetworkSettings { SmallInputStem = false };
        using var resnet18 = Create(ImageArchitecture.ResNet18, 3, 32, settings: imageNetStem);
        using var resnet50 = Create(ImageArchitecture.ResNet50, 3, 32, settings: imageNetStem);
        Assert.Equal(62, resnet18.parameters().Count());
        Assert.Equal(161, resnet50.parameters().Count());
        // 11,689,512 and 25,557,032 scalars with 1000 classes; with 10 classes the head is smaller.
        Assert.Equal(11_689_512 - 990 * 513, resnet18.parameters().Sum(p => p.numel()));
        Assert.Equal(25_557_032 - 990 * 2049, resnet50.parameters().Sum(p => p.numel()));
    }

    public static TheoryData<ImageArchitecture, bool, int[], int> Vggs => new()
    {
        // vgg16 ("D"): 13 convolutions with bias, each followed by ReLU; poolings at 4, 9, 16, 23, 30.
        { ImageArchitecture.Vgg16, false, new[] { 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 }, 13 * 2 + 3 * Dense },
        // vgg16_bn: conv, bn, ReLU per convolution, so the last convolution is features.40 and its norm features.41.
        { ImageArchitecture.Vgg16, true, new[] { 0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40 }, 13 * (2 + Norm) + 3 * Dense },
        // vgg11 ("A"): 8 convolutions; poolings at 2, 5, 10, 15, 20.
        { ImageArchitecture.Vgg11, false, new[] { 0, 3, 6, 8, 11, 13, 16, 18 }, 8 * 2 + 3 * Dense },
    };

    [Theory]
    [MemberData(nameof(Vggs))]
    public void VggKeysAreTorchvisions(ImageArchitecture architecture, bool batchNorm, int[] convolutions, int entries)
    {
        var settings = Narrow();
        settings.VggBatchNorm = batchNorm;
        using var network = Create(architecture, 3, 32, settings: settings);
        var state = network.state_dict();
        var ordered = KeysInPyTorchOrder(network);

        Assert.Equal(entries, state.Count);
        Assert.Equal("features.0.weight", ordered[0]);
        Assert.Equal("classifier.6.bias", ordered[^1]);
        Assert.Equal("classifier.6", network.HeadName);
        Assert.All(convolutions, index => Assert.Contains($"features.{index}.weight", state.Keys));
        Assert.All(convolutions, index => Assert.Contains($"features.{index}.bias", state.Keys));
        if (batchNorm)
            Assert.All(convolutions, index => Assert.Contains($"features.{index + 1}.running_var", state.Keys));
        Assert.All(new[] { 0, 3, 6 }, index => Assert.Contains($"classifier.{index}.weight", state.Keys));
    }

    [Fact]
    public void AlexNetKeysAreTorchvisions()
    {
        // features.0/3/6/8/10 convolutions, classifier.1/4 dense layers behind dropout, head classifier.6: 8 × 2 = 16.
        using var network = Create(ImageArchitecture.AlexNet, 3, 32);
        var ordered = KeysInPyTorchOrder(network);
        var expected = new[] { "features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4", "classifier.6" }
            .SelectMany(layer => new[] { layer + ".weight", layer + ".bias" });
        Assert.Equal(expected, ordered);
    }

    [Theory]
    [InlineData(ImageArchitecture.DefaultCnn, "classifier.4")]
    [InlineData(ImageArchitecture.LeNet5, "classifier.6")]
    public void SmallNetworksNameTheirHeadInTheClassifier(ImageArchitecture architecture, string head)
    {
        using var network = Create(architecture, 1, 28);
        Assert.Equal(head, network.HeadName);
        Assert.Equal(head + ".bias", KeysInPyTorchOrder(network)[^1]);
    }
}
