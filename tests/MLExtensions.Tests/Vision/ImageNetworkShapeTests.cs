using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using static MLExtensions.Tests.Vision.VisionTestNetworks;

namespace MLExtensions.Tests.Vision;

/// <summary>Output shapes of every architecture for small images and, for the ImageNet ones, for 224×224.</summary>
public class ImageNetworkShapeTests
{
    public static TheoryData<ImageArchitecture, int, int> SmallInputs()
    {
        var data = new TheoryData<ImageArchitecture, int, int>();
        foreach (var architecture in Enum.GetValues<ImageArchitecture>())
        {
            data.Add(architecture, 1, 28);
            data.Add(architecture, 3, 32);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SmallInputs))]
    public void SmallImagesGiveOneLogitPerClassAndFeaturesFeedTheHead(ImageArchitecture architecture, int channels, int size)
    {
        using var network = Create(architecture, channels, size, classes: 10);
        using var images = Images(2, channels, size);

        using var logits = Predict(network, images);
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        Assert.Equal(channels, network.InputChannels);
        Assert.Equal(10, network.ClassCount);

        using var noGrad = torch.no_grad();
        using var features = network.ExtractFeatures(images);
        Assert.Equal(new long[] { 2, network.FeatureSize }, features.shape);
        using var classified = network.Classify(features);
        Assert.True(Identical(logits, classified), "forward must be Classify(ExtractFeatures(x))");
    }

    [Theory]
    [InlineData(ImageArchitecture.ResNet18, 512)]
    [InlineData(ImageArchitecture.ResNet34, 512)]
    [InlineData(ImageArchitecture.ResNet50, 2048)]
    [InlineData(ImageArchitecture.AlexNet, 4096)]
    [InlineData(ImageArchitecture.Vgg11, 4096)]
    [InlineData(ImageArchitecture.Vgg16, 4096)]
    public void ImageNetSizedInputGivesTorchvisionShapes(ImageArchitecture architecture, int featureSize)
    {
        // Width 1 and 1000 classes: the exact torchvision network (one image keeps VGG-16 at about 15 GFLOPs).
        using var network = Create(architecture, 3, 224, classes: 1000, settings: new ImageNetworkSettings());
        using var images = Images(1, 3, 224);

        using var logits = Predict(network, images);

        Assert.Equal(new long[] { 1, 1000 }, logits.shape);
        Assert.Equal(featureSize, network.FeatureSize);
        var state = network.state_dict();
        Assert.Equal(new long[] { 1000, featureSize }, state[network.HeadName + ".weight"].shape);
        if (network is ResNet)
        {
            Assert.Equal(new long[] { 64, 3, 7, 7 }, state["conv1.weight"].shape);
        }
        else
        {
            // The first dense layer sees torchvision's pooled map: 512×7×7 for VGG, 256×6×6 for AlexNet.
            long flattened = network is Vgg ? 512 * 7 * 7 : 256 * 6 * 6;
            Assert.Equal(new long[] { 4096, flattened }, state[network is Vgg ? "classifier.0.weight" : "classifier.1.weight"].shape);
        }
    }

    [Fact]
    public void ResNetStemFollowsTheInputSizeUnlessSet()
    {
        using var small = (ResNet)Create(ImageArchitecture.ResNet18, 3, 32);
        using var large = (ResNet)Create(ImageArchitecture.ResNet18, 3, 64);
        using var forced = (ResNet)Create(ImageArchitecture.ResNet18, 3, 32, settings: new ImageNetworkSettings { SmallInputStem = false });

        Assert.True(small.SmallInputStem);
        Assert.Equal(new long[] { 64, 3, 3, 3 }, small.state_dict()["conv1.weight"].shape);
        Assert.False(large.SmallInputStem);
        Assert.False(forced.SmallInputStem);
        using var images = Images(1, 3, 32);
        using var logits = Predict(forced, images);
        Assert.Equal(new long[] { 1, 10 }, logits.shape);
    }

    [Fact]
    public void AnInputTooSmallForTheArchitectureIsRejectedWithItsSize()
    {
        var imageNetStem = new ImageNetworkSettings { SmallInputStem = false };
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.AlexNet, 3, 10, 32, 32, imageNetStem, null));
        Assert.Contains("32×32", error.Message);
        Assert.Contains("AlexNet", error.Message);
    }

    [Fact]
    public void InvalidArgumentsAndSettingsAreRejectedByName()
    {
        Assert.Equal("classes", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.DefaultCnn, 1, 0, 28, 28, new ImageNetworkSettings(), null)).ParamName);
        Assert.Equal("inputChannels", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.DefaultCnn, 0, 10, 28, 28, new ImageNetworkSettings(), null)).ParamName);
        Assert.Equal("Dropout", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.DefaultCnn, 1, 10, 28, 28, new ImageNetworkSettings { Dropout = 1 }, null)).ParamName);
        Assert.Equal("VggWidthMultiplier", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.Vgg11, 1, 10, 28, 28, new ImageNetworkSettings { VggWidthMultiplier = 0 }, null)).ParamName);
        Assert.Equal("ClassifierPoolSize", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImageNetworks.Create(ImageArchitecture.Vgg11, 1, 10, 28, 28, new ImageNetworkSettings { ClassifierPoolSize = 0 }, null)).ParamName);
    }
}
