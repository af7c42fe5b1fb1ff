using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using static MLExtensions.Tests.Vision.VisionTestNetworks;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Vision;

/// <summary>Stages, head replacement, seeded initialisation and dropout, and a training step.</summary>
public class ImageNetworkBehaviourTests
{
    [Theory]
    [InlineData(ImageArchitecture.DefaultCnn, 3)]
    [InlineData(ImageArchitecture.LeNet5, 3)]
    [InlineData(ImageArchitecture.AlexNet, 4)]
    [InlineData(ImageArchitecture.Vgg11, 6)]
    [InlineData(ImageArchitecture.Vgg16, 6)]
    [InlineData(ImageArchitecture.ResNet18, 5)]
    [InlineData(ImageArchitecture.ResNet50, 5)]
    [InlineData(ImageArchitecture.ResNet20, 4)]
    public void StagesAndHeadSplitTheParametersWithoutOverlap(ImageArchitecture architecture, int stages)
    {
        using var network = Create(architecture, 3, 32);

        Assert.Equal(stages, network.Stages.Count);
        var owners = network.Stages.Append(network.Head)
            .SelectMany(part => part.parameters().Select(p => p.Handle))
            .ToList();
        var all = network.parameters().Select(p => p.Handle).ToList();
        Assert.Equal(all.Count, owners.Count);
        Assert.Equal(all.Order(), owners.Order());
    }

    [Fact]
    public void ResNetStagesAreTheStemAndTheLayers()
    {
        using var network = Create(ImageArchitecture.ResNet18, 3, 224, settings: new ImageNetworkSettings());
        var stem = network.Stages[0].named_children().Select(c => c.name);
        Assert.Equal(new[] { "conv1", "bn1", "relu", "maxpool" }, stem);
        var layer1 = network.named_children().Single(c => c.name == "layer1").module;
        Assert.Same(layer1, network.Stages[1]);
    }

    [Theory]
    [InlineData(ImageArchitecture.ResNet18)]
    [InlineData(ImageArchitecture.Vgg16)]
    [InlineData(ImageArchitecture.DefaultCnn)]
    public void ReplacingTheHeadKeepsItsNameAndTheBackbone(ImageArchitecture architecture)
    {
        using var network = Create(architecture, 3, 32, classes: 10);
        network.eval();
        var before = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        string head = network.HeadName;

        network.ReplaceHead(4, new Generator(3, CPU));

        var after = network.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.Equal(head, network.HeadName);
        Assert.Equal(4, network.ClassCount);
        Assert.Equal(new long[] { 4, network.FeatureSize }, after[head + ".weight"].shape);
        Assert.False(network.Head.training);
        AssertSameTensors(before, after, except: new[] { head + ".weight", head + ".bias" });
        using var images = Images(2, 3, 32);
        using var logits = Predict(network, images);
        Assert.Equal(new long[] { 2, 4 }, logits.shape);
        // The new head is what the optimizer will see.
        Assert.Contains(network.parameters(), p => p.Handle == after[head + ".weight"].Handle);
    }

    [Fact]
    public void TheGeneratorDecidesTheWeightsAndNullMeansSeedZero()
    {
        var settings = Narrow();
        using var a = ImageNetworks.Create(ImageArchitecture.Vgg11, 3, 10, 32, 32, settings, new Generator(5, CPU));
        using var b = ImageNetworks.Create(ImageArchitecture.Vgg11, 3, 10, 32, 32, settings, new Generator(5, CPU));
        using var c = ImageNetworks.Create(ImageArchitecture.Vgg11, 3, 10, 32, 32, settings, new Generator(6, CPU));
        using var unseeded = ImageNetworks.Create(ImageArchitecture.Vgg11, 3, 10, 32, 32, settings, null);
        using var zero = ImageNetworks.Create(ImageArchitecture.Vgg11, 3, 10, 32, 32, settings, new Generator(0, CPU));

        AssertSameTensors(a.state_dict(), b.state_dict());
        AssertSameTensors(unseeded.state_dict(), zero.state_dict());
        Assert.False(Identical(a.state_dict()["features.0.weight"], c.state_dict()["features.0.weight"]));
        // Batch norm starts at the identity whatever the generator.
        using var resnet = Create(ImageArchitecture.ResNet20, 3, 32);
        Assert.True(Identical(resnet.state_dict()["bn1.weight"], torch.ones(16)));
        Assert.True(Identical(resnet.state_dict()["bn1.bias"], torch.zeros(16)));
    }

    [Fact]
    public void DropoutDrawsFromTheNetworksGeneratorAndOnlyInTraining()
    {
        var settings = new ImageNetworkSettings { Dropout = 0.5 };
        using var images = Images(2, 1, 28);
        Tensor TrainingOutput(ImageNetwork network)
        {
            network.train();
            using var noGrad = torch.no_grad();
            return network.call(images);
        }

        using var a = ImageNetworks.Create(ImageArchitecture.DefaultCnn, 1, 10, 28, 28, settings, new Generator(9, CPU));
        using var b = ImageNetworks.Create(ImageArchitecture.DefaultCnn, 1, 10, 28, 28, settings, new Generator(9, CPU));
        using var first = TrainingOutput(a);
        using var second = TrainingOutput(a);
        using var twin = TrainingOutput(b);

        Assert.True(Identical(first, twin), "same seed, same masks");
        Assert.False(Identical(first, second), "the masks change from call to call");
        using var evaluated = Predict(a, images);
        using var again = Predict(a, images);
        Assert.True(Identical(evaluated, again), "no dropout in evaluation mode");
    }

    [Theory]
    [InlineData(ImageArchitecture.DefaultCnn)]
    [InlineData(ImageArchitecture.ResNet20)]
    public void ATrainingStepReachesEveryParameterAndLowersTheLoss(ImageArchitecture architecture)
    {
        // No dropout, so the two losses are comparable.
        using var network = Create(architecture, 3, 32, classes: 3, settings: new ImageNetworkSettings { Dropout = 0 });
        network.train();
        using var images = Images(8, 3, 32);
        using var labels = torch.tensor(new long[] { 0, 1, 2, 0, 1, 2, 0, 1 });
        using var optimizer = torch.optim.SGD(network.parameters(), 0.05);

        float Step()
        {
            optimizer.zero_grad();
            using var loss = nn.functional.cross_entropy(network.call(images), labels);
            loss.backward();
            optimizer.step();
            return loss.item<float>();
        }

        float first = Step();
        Assert.All(network.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0));
        float second = Step();
        Assert.True(second < first, $"loss {first} → {second}");
    }
}
