using System.IO.Compression;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Vision;

public class ResNet18OnnxWeightsTests
{
    private readonly ITestOutputHelper _output;

    public ResNet18OnnxWeightsTests(ITestOutputHelper output)
    {
        _output = output;
        TorchNativeLoader.EnsureLoaded();
    }

    /// <summary>
    /// The mapping found in ML.NET's ResNet18.onnx, written out by hand from the graph (see the report in the
    /// ResNet18OnnxWeights remarks). A change here means the topology walk or the file changed.
    /// </summary>
    private static readonly string[] ExpectedMapping =
    {
        "conv1=Convolution249", "bn1=BatchNormalization251",
        "layer1.0.conv1=Convolution257", "layer1.0.bn1=BatchNormalization259", "layer1.0.conv2=Convolution263", "layer1.0.bn2=BatchNormalization265",
        "layer1.1.conv1=Convolution271", "layer1.1.bn1=BatchNormalization273", "layer1.1.conv2=Convolution277", "layer1.1.bn2=BatchNormalization279",
        "layer2.0.conv1=Convolution285", "layer2.0.bn1=BatchNormalization287", "layer2.0.conv2=Convolution291", "layer2.0.bn2=BatchNormalization293",
        "layer2.0.downsample.0=Convolution295", "layer2.0.downsample.1=BatchNormalization297",
        "layer2.1.conv1=Convolution303", "layer2.1.bn1=BatchNormalization305", "layer2.1.conv2=Convolution309", "layer2.1.bn2=BatchNormalization311",
        "layer3.0.conv1=Convolution317", "layer3.0.bn1=BatchNormalization319", "layer3.0.conv2=Convolution323", "layer3.0.bn2=BatchNormalization325",
        "layer3.0.downsample.0=Convolution327", "layer3.0.downsample.1=BatchNormalization329",
        "layer3.1.conv1=Convolution335", "layer3.1.bn1=BatchNormalization337", "layer3.1.conv2=Convolution341", "layer3.1.bn2=BatchNormalization343",
        "layer4.0.conv1=Convolution349", "layer4.0.bn1=BatchNormalization351", "layer4.0.conv2=Convolution355", "layer4.0.bn2=BatchNormalization357",
        "layer4.0.downsample.0=Convolution359", "layer4.0.downsample.1=BatchNormalization361",
        "layer4.1.conv1=Convolution367", "layer4.1.bn1=BatchNormalization369", "layer4.1.conv2=Convolution373", "layer4.1.bn2=BatchNormalization375",
        "layer4.2.conv1=Convolution381", "layer4.2.bn1=BatchNormalization383", "layer4.2.conv2=Convolution387", "layer4.2.bn2=BatchNormalization389",
    };

    private static readonly int[] Widths = { 64, 128, 256, 512 };

    [Fact]
    public void MappingFollowsTheGraphTopology()
    {
        var mapping = ResNet18OnnxWeights.ReadMapping();

        Assert.Equal(new[] { 2, 2, 2, 3 }, mapping.BlocksPerStage);
        Assert.Equal(ResNet18OnnxWeights.BlocksPerStage, mapping.BlocksPerStage);
        Assert.Equal(ExpectedMapping, mapping.Modules.Select(m => $"{m.Module}={m.NodeName}"));
        Assert.False(mapping.HasClassifier);
        Assert.Equal("Input247", mapping.InputName);
        Assert.Equal("Pooling395_Output_0", mapping.FeatureTensor);
        // Nothing was rewritten: separate batch norms with eps 1e-5, no conv biases.
        Assert.DoesNotContain(mapping.Notes, n => n.Contains("folded", StringComparison.Ordinal) || n.Contains("bias", StringComparison.Ordinal));
        Assert.Contains(mapping.Notes, n => n.Contains("asymmetric pads [3, 3, 2, 2]", StringComparison.Ordinal));
    }

    [Fact]
    public void StateDictHasTorchvisionKeysShapesAndTheOnnxValues()
    {
        var model = OnnxModelReader.Load(ResNet18OnnxWeights.Locate());
        var stateDict = ResNet18OnnxWeights.LoadStateDict();
        try
        {
            using var reference = new ReferenceResNet(ResNet18OnnxWeights.BlocksPerStage, Widths);
            var expected = reference.state_dict();
            // Same key set (TorchSharp lists all parameters before all buffers, so the order differs from torchvision's).
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stateDict.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, tensor) in expected)
            {
                Assert.Equal(tensor.shape, stateDict[key].shape);
                Assert.Equal(tensor.dtype, stateDict[key].dtype);
            }
            Assert.Equal(new long[] { 64, 3, 7, 7 }, stateDict["conv1.weight"].shape);
            Assert.Equal(new long[] { 512, 256, 1, 1 }, stateDict["layer4.0.downsample.0.weight"].shape);
            Assert.Equal(22 + 22 * 5, stateDict.Count); // 22 convolutions, 22 batch norms, no fc

            // Values are copied unchanged: eps is 1e-5 and convolutions have no bias in this file.
            Assert.Equal(model.GetInitializer("Parameter86").ToFloatArray(), stateDict["layer1.0.conv1.weight"].data<float>().ToArray());
            Assert.Equal(model.GetInitializer("Constant206").ToFloatArray(), stateDict["layer2.0.downsample.1.running_var"].data<float>().ToArray());
            Assert.Equal(model.GetInitializer("Parameter96").ToFloatArray(), stateDict["bn1.weight"].data<float>().ToArray());
            Assert.Equal(0L, stateDict["bn1.num_batches_tracked"].item<long>());
        }
        finally
        {
            foreach (var t in stateDict.Values)
                t.Dispose();
        }
    }

    [Fact]
    public void TorchSharpNetworkWithTheStateDictMatchesOnnxRuntimeOnRealImages()
    {
        const int count = 4;
        using var scope = torch.NewDisposeScope();
        var images = ColourFashionMnist(count); // RGB, [0, 255], [N, 3, 224, 224]

        // ONNX Runtime: ML.NET's preprocessing model, then the network, one image at a time (batch size is fixed at 1).
        var expected = new float[count][];
        using (var preprocess = new InferenceSession(ResNet18OnnxWeights.LocatePreprocess()))
        using (var network = new InferenceSession(ResNet18OnnxWeights.Locate()))
        {
            for (int i = 0; i < count; i++)
            {
                var pixels = new DenseTensor(images[i].contiguous().data<float>().ToArray(), new[] { 1, 3, 224, 224 });
                using var prepared = preprocess.Run(new[] { NamedOnnxValue.CreateFromTensor("OriginalInput", pixels) });
                var input = prepared.First().AsTensor<float>().ToDenseTensor();
                using var features = network.Run(new[] { NamedOnnxValue.CreateFromTensor("Input247", input) });
                expected[i] = features.First().AsEnumerable<float>().ToArray();
            }
        }

        // TorchSharp: BGR minus the mean image, then the library's own ResNet-18 (in the file's [2, 2, 2, 3] layout)
        // loaded with the mapped state dict through the same loader the ImageClassifier uses.
        var stateDict = ResNet18OnnxWeights.LoadStateDict();
        var settings = new ImageNetworkSettings { ResNetBlocksPerStage = ResNet18OnnxWeights.BlocksPerStage.ToArray() };
        using var net = ImageNetworks.Create(ImageArchitecture.ResNet18, 3, 1000, 224, 224, settings, null);
        var report = TorchvisionWeights.Load(net, stateDict, "ResNet18.onnx", skipHead: true);
        Assert.Equal(132, report.LoadedKeys.Count); // every entry of the file; only the new head is left out
        Assert.Equal(new[] { "fc.bias", "fc.weight" }, report.SkippedHeadKeys.Order());
        foreach (var t in stateDict.Values)
            t.Dispose();
        net.eval();
        using var mean = ResNet18OnnxWeights.LoadMeanImage();
        Tensor actual;
        using (torch.no_grad())
            actual = net.ExtractFeatures(images.flip(1) - mean);

        var want = torch.tensor(expected.SelectMany(e => e).ToArray(), new long[] { count, 512 });
        double maxAbs = (actual - want).abs().max().item<float>();
        double maxValue = want.abs().max().item<float>();
        _output.WriteLine($"max |torch - onnxruntime| = {maxAbs:E3} over {count}x512 features; max |feature| = {maxValue:F3}");
        Assert.True(maxValue > 1, "the features should not be trivially small");
        Assert.True(maxAbs <= 1e-4, $"max abs difference {maxAbs:E3} exceeds 1e-4");
        // Different images give different features (the comparison is not between constants).
        Assert.True((want[0] - want[1]).abs().max().item<float>() > 0.1f);
    }

    [Theory]
    [InlineData("gemm-transB")]
    [InlineData("gemm-scaled")]
    [InlineData("matmul")]
    public void MappingRulesReproduceOnnxRuntimeOnATinyExport(string classifier)
    {
        // Stages [1, 2], widths [4, 8], with every rewrite: eps 1e-3, a conv bias before a batch norm, a batch norm
        // folded into its conv, a projection shortcut, and a classifier of the given kind.
        var b = new OnnxResNetBuilder(seed: 7);
        string x = b.Input("x", 2, 3, 32, 32);
        string h = b.MaxPool(b.Relu(b.BatchNorm(b.Conv(x, 3, 4, 7, 2, new long[] { 3, 3, 3, 3 }, bias: false), 4, epsilon: 1e-3f)));
        string m = b.Relu(b.BatchNorm(b.Conv(h, 4, 4, 3, 1, new long[] { 1, 1, 1, 1 }, bias: true), 4, 1e-5f));
        m = b.Conv(m, 4, 4, 3, 1, new long[] { 1, 1, 1, 1 }, bias: true); // folded batch norm
        h = b.Relu(b.Add(m, h));
        m = b.BatchNorm(b.Conv(b.Relu(b.BatchNorm(b.Conv(h, 4, 8, 3, 2, new long[] { 1, 1, 1, 1 }, false), 8, 1e-5f)), 8, 8, 3, 1, new long[] { 1, 1, 1, 1 }, false), 8, 1e-5f);
        string s = b.BatchNorm(b.Conv(h, 4, 8, 1, 2, new long[] { 0, 0, 0, 0 }, false), 8, 1e-5f);
        h = b.Relu(b.Add(m, s));
        m = b.BatchNorm(b.Conv(b.Relu(b.BatchNorm(b.Conv(h, 8, 8, 3, 1, new long[] { 1, 1, 1, 1 }, false), 8, 1e-5f)), 8, 8, 3, 1, new long[] { 1, 1, 1, 1 }, false), 8, 1e-5f);
        h = b.Relu(b.Add(m, h));
        string f = b.Flatten(b.GlobalAveragePool(h));
        string y = classifier switch
        {
            "gemm-transB" => b.Gemm(f, 8, 5, transB: true, alpha: 1f, beta: 1f),
            "gemm-scaled" => b.Gemm(f, 8, 5, transB: false, alpha: 2f, beta: 0.5f),
            _ => b.MatMulAdd(f, 8, 5),
        };
        byte[] bytes = b.Build(y);

        var model = OnnxModelReader.Load(bytes, "tiny export");
        var mapping = ResNetOnnxMapping.FromGraph(model);
        Assert.Equal(new[] { 1, 2 }, mapping.BlocksPerStage);
        Assert.True(mapping.HasClassifier);
        Assert.Equal("layer1.0.bn2", mapping.Modules.Single(e => e.OpType == "Conv" && e.Module.Contains("bn")).Module);
        Assert.Contains(mapping.Notes, n => n.StartsWith("bn1: epsilon", StringComparison.Ordinal));
        Assert.Contains(mapping.Notes, n => n.Contains("layer1.0.conv1: Conv", StringComparison.Ordinal) && n.Contains("running_mean", StringComparison.Ordinal));

        using var scope = torch.NewDisposeScope();
        var input = torch.rand(new long[] { 2, 3, 32, 32 }, generator: new Generator(3)) * 4 - 2;
        float[] expected;
        using (var session = new InferenceSession(bytes))
        {
            var tensor = new DenseTensor(input.data<float>().ToArray(), new[] { 2, 3, 32, 32 });
            using var result = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", tensor) });
            expected = result.First().AsEnumerable<float>().ToArray();
        }

        using var net = new ReferenceResNet(mapping.BlocksPerStage, new[] { 4, 8 }, classes: 5);
        var stateDict = mapping.ToStateDict(model);
        Assert.Equal(net.state_dict().Keys.Order(StringComparer.Ordinal), mapping.StateDictKeys.Order(StringComparer.Ordinal));
        Assert.Equal(mapping.StateDictKeys, stateDict.Keys);
        net.load_state_dict(stateDict, strict: true);
        net.eval();
        using (torch.no_grad())
        {
            var actual = net.forward(input).data<float>().ToArray();
            Assert.Equal(expected.Length, actual.Length);
            double maxAbs = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            _output.WriteLine($"{classifier}: max |torch - onnxruntime| = {maxAbs:E3}");
            Assert.True(maxAbs <= 1e-5, $"max abs difference {maxAbs:E3}");
        }
    }

    [Fact]
    public void GraphsThatAreNotBasicBlockResNetsAreRejectedWithTheNode()
    {
        var b = new OnnxResNetBuilder(seed: 1);
        string x = b.Input("x", 1, 3, 32, 32);
        string h = b.MaxPool(b.Relu(b.BatchNorm(b.Conv(x, 3, 4, 7, 2, new long[] { 3, 3, 3, 3 }, false), 4, 1e-5f)));
        string m = b.Relu(b.BatchNorm(b.Conv(h, 4, 4, 1, 1, new long[] { 0, 0, 0, 0 }, false), 4, 1e-5f)); // 1x1: bottleneck-style
        h = b.Relu(b.Add(b.BatchNorm(b.Conv(m, 4, 4, 3, 1, new long[] { 1, 1, 1, 1 }, false), 4, 1e-5f), h));
        var model = OnnxModelReader.Load(b.Build(b.GlobalAveragePool(h)), "odd export");

        var e = Assert.Throws<NotSupportedException>(() => ResNetOnnxMapping.FromGraph(model));
        Assert.Contains("odd export", e.Message);
        Assert.Contains("layer1.0.conv1", e.Message);
        Assert.Contains("1x1 kernel, expected 3x3", e.Message);
    }

    [Fact]
    public void LocatesTheModelAndNamesWhatIsMissing()
    {
        // The package's build props copy the models next to the test assembly.
        string inOutput = Path.Combine(AppContext.BaseDirectory, ResNet18OnnxWeights.ModelFolder, ResNet18OnnxWeights.ModelFileName);
        Assert.Equal(inOutput, ResNet18OnnxWeights.Locate());
        Assert.Equal(inOutput, ResNet18OnnxWeights.Locate(AppContext.BaseDirectory));
        Assert.Equal(inOutput, ResNet18OnnxWeights.Locate(inOutput));

        using var temp = new TempDirectory();
        string absent = temp.File("ResNet18.onnx");
        var e = Assert.Throws<FileNotFoundException>(() => ResNet18OnnxWeights.Locate(absent));
        Assert.Contains(absent, e.Message);
        Assert.Contains("does not contain ResNet18.onnx", Assert.Throws<FileNotFoundException>(() => ResNet18OnnxWeights.Locate(temp.Path)).Message);
    }

    [Fact]
    public void SearchesTheNuGetCacheNewestVersionFirst()
    {
        using var temp = new TempDirectory();
        string root = Path.Combine(temp.Path, "microsoft.ml.dnnimagefeaturizer.resnet18");
        foreach (var version in new[] { "0.9.0", "0.23.1", "0.23.0-preview", "0.10.2" })
            Directory.CreateDirectory(Path.Combine(root, version));

        var places = ResNet18OnnxWeights.SearchLocations(ResNet18OnnxWeights.ModelFolder, ResNet18OnnxWeights.ModelFileName, temp.Path);

        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"), places[0]);
        Assert.Equal(new[] { "0.23.1", "0.23.0-preview", "0.10.2", "0.9.0" },
            places.Skip(1).Select(p => Path.GetFileName(Path.GetRelativePath(root, p).Split(Path.DirectorySeparatorChar)[0])));
        Assert.EndsWith(Path.Combine("0.23.1", "tools", "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"), places[1]);
    }

    [Fact]
    public void MeanImageIsBgrInPixelScale()
    {
        using var mean = ResNet18OnnxWeights.LoadMeanImage();
        Assert.Equal(new long[] { 3, 224, 224 }, mean.shape);
        var channelMeans = mean.mean(new long[] { 1, 2 }).data<float>().ToArray();
        // ImageNet's mean in BGR order and [0, 255] scale (B ≈ 103.9, G ≈ 116.8, R ≈ 123.7 in the usual per-channel form).
        Assert.Equal(103.06, channelMeans[0], 0.01);
        Assert.Equal(115.90, channelMeans[1], 0.01);
        Assert.Equal(123.15, channelMeans[2], 0.01);
    }

    /// <summary>
    /// Fashion-MNIST test items upscaled to 224×224 (bilinear) and coloured so the three channels differ
    /// (R = g, G = 0.6 g + 40, B = 255 − 0.8 g), which exercises the RGB→BGR reversal.
    /// </summary>
    private static Tensor ColourFashionMnist(int count)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "TestData", "FashionMnist", "t10k-images-idx3-ubyte.gz");
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var buffer = new MemoryStream();
        gz.CopyTo(buffer);
        var bytes = buffer.ToArray();
        var pixels = bytes.AsSpan(16, count * 28 * 28).ToArray().Select(v => (float)v).ToArray();
        var grey = torch.tensor(pixels, new long[] { count, 1, 28, 28 });
        var large = nn.functional.interpolate(grey, size: new long[] { 224, 224 }, mode: InterpolationMode.Bilinear, align_corners: false).clamp(0, 255);
        return torch.cat(new[] { large, large * 0.6 + 40, 255 - large * 0.8 }, 1).contiguous();
    }
}
