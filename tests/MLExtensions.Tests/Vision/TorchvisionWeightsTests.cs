using System.Text;
using System.Text.Json;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static MLExtensions.Tests.Vision.VisionTestNetworks;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Vision;

/// <summary>
/// Loading torchvision-format weights. The files are written here with TorchSharp.PyBridge, in the formats
/// PyTorch's torch.save and safetensors write, from networks whose batch-norm statistics a training-mode
/// forward pass has moved away from their initial values (so buffers are checked, not only parameters).
/// </summary>
public class TorchvisionWeightsTests
{
    private static ImageNetwork Trained(ImageArchitecture architecture, int classes = 10, ulong seed = 1)
    {
        var network = Create(architecture, 3, 32, classes, seed: seed);
        network.train();
        using (torch.no_grad())
        using (var images = Images(4, 3, 32, seed: 11))
            network.call(images).Dispose();
        network.eval();
        return network;
    }

    [Theory]
    [InlineData(ImageArchitecture.ResNet18, ".pth")]
    [InlineData(ImageArchitecture.ResNet18, ".safetensors")]
    [InlineData(ImageArchitecture.Vgg16, ".pt")]
    [InlineData(ImageArchitecture.Vgg16, ".safetensors")]
    public void RoundTripGivesIdenticalOutputs(ImageArchitecture architecture, string extension)
    {
        using var folder = new TempDirectory();
        string path = folder.File("weights" + extension);
        using var source = Trained(architecture);
        if (extension == ".safetensors")
            source.save_safetensors(path);
        else
            source.save_py(path);
        using var fresh = Create(architecture, 3, 32, seed: 2);

        var report = TorchvisionWeights.Load(fresh, path, skipHead: false);

        Assert.True(report.HeadLoaded);
        Assert.Equal(fresh.state_dict().Count, report.LoadedKeys.Count);
        Assert.Empty(report.SkippedHeadKeys);
        Assert.Empty(report.MissingOptionalKeys);
        AssertSameTensors(source.state_dict(), fresh.state_dict());
        using var images = Images(2, 3, 32);
        using var expected = Predict(source, images);
        using var actual = Predict(fresh, images);
        Assert.True(Identical(expected, actual));
    }

    [Fact]
    public void AHeadForOtherClassesIsSkippedAndReported()
    {
        using var folder = new TempDirectory();
        string path = folder.File("resnet.pth");
        using var source = Trained(ImageArchitecture.ResNet18, classes: 10);
        source.save_py(path);
        using var target = Create(ImageArchitecture.ResNet18, 3, 32, classes: 5, seed: 2);
        var initialHead = target.state_dict()["fc.weight"].clone();

        var report = TorchvisionWeights.Load(target, path, skipHead: false);

        Assert.False(report.HeadLoaded);
        Assert.Equal(new[] { "fc.weight", "fc.bias" }, report.SkippedHeadKeys);
        Assert.Contains("10 classes", report.HeadSkipReason);
        Assert.Contains("fc.weight", report.ToString());
        Assert.True(Identical(initialHead, target.state_dict()["fc.weight"]));
        AssertSameTensors(source.state_dict(), target.state_dict(), except: report.SkippedHeadKeys);
        using var images = Images(2, 3, 32);
        source.eval();
        target.eval();
        using var noGrad = torch.no_grad();
        Assert.True(Identical(source.ExtractFeatures(images), target.ExtractFeatures(images)));
    }

    [Fact]
    public void SkipHeadLeavesAMatchingHeadAlone()
    {
        using var folder = new TempDirectory();
        string path = folder.File("vgg.safetensors");
        using var source = Trained(ImageArchitecture.Vgg11);
        source.save_safetensors(path);
        using var target = Create(ImageArchitecture.Vgg11, 3, 32, seed: 2);
        var initialHead = target.state_dict()["classifier.6.weight"].clone();

        var report = TorchvisionWeights.Load(target, path, skipHead: true);

        Assert.Equal(new[] { "classifier.6.weight", "classifier.6.bias" }, report.SkippedHeadKeys);
        Assert.True(Identical(initialHead, target.state_dict()["classifier.6.weight"]));
        Assert.True(Identical(source.state_dict()["classifier.3.weight"], target.state_dict()["classifier.3.weight"]));
    }

    [Fact]
    public void FilesWithoutBatchCountersLoadAndSaySo()
    {
        // torchvision's original ImageNet files predate num_batches_tracked (PyTorch 0.4.1).
        using var folder = new TempDirectory();
        string path = folder.File("old.pth");
        using var source = Trained(ImageArchitecture.ResNet18);
        var counters = source.state_dict().Keys.Where(k => k.EndsWith(".num_batches_tracked")).ToList();
        source.save_py(path, skip: counters);
        using var target = Create(ImageArchitecture.ResNet18, 3, 32, seed: 2);

        var report = TorchvisionWeights.Load(target, path, skipHead: false);

        Assert.Equal(20, report.MissingOptionalKeys.Count); // bn1, 2 per block × 8 blocks, 3 downsample norms
        Assert.Equal(102, report.LoadedKeys.Count);
        using var images = Images(2, 3, 32);
        using var expected = Predict(source, images);
        using var actual = Predict(target, images);
        Assert.True(Identical(expected, actual));
    }

    [Fact]
    public void SafetensorsWithMetadataAsPythonWritesItLoad()
    {
        // safetensors.torch.save_file adds {"__metadata__": {"format": "pt"}} to the header; PyBridge never writes it.
        using var folder = new TempDirectory();
        string path = folder.File("python.safetensors");
        using var source = Trained(ImageArchitecture.ResNet20);
        WriteSafetensors(path, source.state_dict(), new Dictionary<string, string> { ["format"] = "pt" });
        using var target = Create(ImageArchitecture.ResNet20, 3, 32, seed: 2);

        TorchvisionWeights.Load(target, path, skipHead: false);

        AssertSameTensors(source.state_dict(), target.state_dict());
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        using var network = Create(ImageArchitecture.ResNet20, 3, 32);
        var error = Assert.Throws<FileNotFoundException>(() => TorchvisionWeights.Load(network, "/nowhere/resnet18.pth", false));
        Assert.Contains("/nowhere/resnet18.pth", error.Message);
    }

    [Fact]
    public void AnUnknownExtensionIsRejected()
    {
        using var folder = new TempDirectory();
        string path = folder.File("weights.onnx");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        using var network = Create(ImageArchitecture.ResNet20, 3, 32);
        var error = Assert.Throws<NotSupportedException>(() => TorchvisionWeights.Load(network, path, false));
        Assert.Contains(".onnx", error.Message);
        Assert.Contains(".safetensors", error.Message);
    }

    [Theory]
    [InlineData(".pth")]
    [InlineData(".safetensors")]
    public void AnUnreadableFileIsNamed(string extension)
    {
        // Not a zip archive: also what torch.save wrote before PyTorch 1.6.
        using var folder = new TempDirectory();
        string path = folder.File("garbage" + extension);
        File.WriteAllBytes(path, Encoding.ASCII.GetBytes("definitely not a tensor file"));
        using var network = Create(ImageArchitecture.ResNet20, 3, 32);
        var error = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Load(network, path, false));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void AnotherArchitectureNamesTheFirstMismatchAndBothShapes()
    {
        using var folder = new TempDirectory();
        string path = folder.File("resnet18.pth");
        using var resnet18 = Trained(ImageArchitecture.ResNet18);
        resnet18.save_py(path);

        // ResNet-50's first block starts with a 1×1 convolution where ResNet-18's has a 3×3 one.
        using var resnet50 = Create(ImageArchitecture.ResNet50, 3, 32);
        var shape = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Load(resnet50, path, false));
        Assert.Contains("'layer1.0.conv1.weight' has shape [64, 64, 3, 3] in the file but [64, 64, 1, 1] in the network", shape.Message);

        // ResNet-34 has the same first blocks but more of them.
        using var resnet34 = Create(ImageArchitecture.ResNet34, 3, 32);
        var missing = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Load(resnet34, path, false));
        Assert.Contains("'layer1.2.conv1.weight' [64, 64, 3, 3] is missing from the file", missing.Message);

        // One input channel instead of three: the message points at the first layer.
        using var gray = Create(ImageArchitecture.ResNet18, 1, 32);
        var channels = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Load(gray, path, false));
        Assert.Contains("'conv1.weight' has shape [64, 3, 3, 3] in the file but [64, 1, 3, 3]", channels.Message);
        Assert.Contains("input channels", channels.Message);
    }

    [Fact]
    public void AnExtraEntryInTheFileIsNamedAndNothingIsCopied()
    {
        using var folder = new TempDirectory();
        string path = folder.File("extra.safetensors");
        using var source = Trained(ImageArchitecture.ResNet20);
        var state = source.state_dict();
        state["layer4.0.conv1.weight"] = torch.zeros(64, 64, 3, 3);
        WriteSafetensors(path, state, metadata: null);
        using var target = Create(ImageArchitecture.ResNet20, 3, 32, seed: 2);
        var before = target.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        var error = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Load(target, path, false));

        Assert.Contains("the file has 'layer4.0.conv1.weight' [64, 64, 3, 3], which the network does not", error.Message);
        AssertSameTensors(before, target.state_dict());
    }

    /// <summary>Writes a safetensors file by the format's specification (little-endian u64 header length, JSON header, raw bytes).</summary>
    private static void WriteSafetensors(string path, Dictionary<string, Tensor> tensors, Dictionary<string, string>? metadata)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null)
            header["__metadata__"] = metadata;
        long offset = 0;
        var data = new List<byte[]>();
        foreach (var (key, tensor) in tensors)
        {
            using var contiguous = tensor.contiguous();
            var bytes = contiguous.bytes.ToArray();
            string dtype = tensor.dtype == ScalarType.Int64 ? "I64" : "F32";
            header[key] = new { dtype, shape = tensor.shape, data_offsets = new[] { offset, offset + bytes.Length } };
            offset += bytes.Length;
            data.Add(bytes);
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)json.Length));
        stream.Write(json);
        foreach (var bytes in data)
            stream.Write(bytes);
    }
}
