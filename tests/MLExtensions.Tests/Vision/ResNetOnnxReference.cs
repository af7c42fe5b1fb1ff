using Google.Protobuf;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Vision;

/// <summary>
/// Test-only basic-block ResNet in torchvision's layout and naming (conv1 7×7/2, bn1, ReLU, max pool 3×3/2 pad 1,
/// stages of BasicBlocks with a conv1×1+bn projection where the shape changes, global average pooling, optional fc).
/// Used to check that a state dict mapped from ONNX computes what ONNX Runtime computes; not the library's ResNet.
/// </summary>
internal sealed class ReferenceResNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly MaxPool2d maxpool;
    private readonly List<Sequential> layers = new();
    private readonly Linear? fc;

    public ReferenceResNet(IReadOnlyList<int> blocksPerStage, IReadOnlyList<int> widths, int classes = 0) : base(nameof(ReferenceResNet))
    {
        conv1 = nn.Conv2d(3, widths[0], kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(widths[0]);
        maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("maxpool", maxpool);
        long channels = widths[0];
        for (int s = 0; s < blocksPerStage.Count; s++)
        {
            var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
            for (int b = 0; b < blocksPerStage[s]; b++)
            {
                long stride = s > 0 && b == 0 ? 2 : 1;
                blocks.Add((b.ToString(), new BasicBlock(channels, widths[s], stride)));
                channels = widths[s];
            }
            var layer = nn.Sequential(blocks);
            layers.Add(layer);
            register_module($"layer{s + 1}", layer);
        }
        if (classes > 0)
        {
            fc = nn.Linear(channels, classes);
            register_module("fc", fc);
        }
    }

    /// <summary>Images [N, 3, H, W] → pooled features [N, C] (or logits when there is an fc).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = maxpool.forward(nn.functional.relu(bn1.forward(conv1.forward(x))));
        foreach (var layer in layers)
            h = layer.forward(h);
        h = h.mean(new long[] { 2, 3 });
        if (fc is not null)
            h = fc.forward(h);
        return h.MoveToOuterDisposeScope();
    }

    private sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1;
        private readonly BatchNorm2d bn1;
        private readonly Conv2d conv2;
        private readonly BatchNorm2d bn2;
        private readonly Sequential? downsample;

        public BasicBlock(long inChannels, long outChannels, long stride) : base(nameof(BasicBlock))
        {
            conv1 = nn.Conv2d(inChannels, outChannels, kernel_size: 3, stride: stride, padding: 1, bias: false);
            bn1 = nn.BatchNorm2d(outChannels);
            conv2 = nn.Conv2d(outChannels, outChannels, kernel_size: 3, stride: 1, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(outChannels);
            register_module("conv1", conv1);
            register_module("bn1", bn1);
            register_module("conv2", conv2);
            register_module("bn2", bn2);
            if (stride != 1 || inChannels != outChannels)
            {
                downsample = nn.Sequential(("0", nn.Conv2d(inChannels, outChannels, kernel_size: 1, stride: stride, bias: false)), ("1", nn.BatchNorm2d(outChannels)));
                register_module("downsample", downsample);
            }
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            var main = bn2.forward(conv2.forward(nn.functional.relu(bn1.forward(conv1.forward(x)))));
            var shortcut = downsample is null ? x : downsample.forward(x);
            return nn.functional.relu(main + shortcut).MoveToOuterDisposeScope();
        }
    }
}

/// <summary>
/// Builds small ONNX graphs of basic-block ResNets by hand (random weights), with the export variants the mapping
/// must handle: convolution biases, batch norms folded into convolutions, epsilons other than 1e-5, and Gemm or
/// MatMul classifiers.
/// </summary>
internal sealed class OnnxResNetBuilder
{
    private readonly GraphProto _graph = new() { Name = "tiny-resnet" };
    private readonly Random _random;
    private int _next;

    public OnnxResNetBuilder(int seed) => _random = new Random(seed);

    public string Input(string name, params long[] dims)
    {
        _graph.Input.Add(Core.OnnxModelReaderTests.ValueInfo(name, TensorProto.Types.DataType.Float, dims.Cast<object>().ToArray()));
        return name;
    }

    public string Conv(string x, long inC, long outC, long kernel, long stride, long[] pads, bool bias)
    {
        var inputs = new List<string> { x, Weight(new[] { outC, inC, kernel, kernel }, 1.0 / Math.Sqrt(inC * kernel * kernel)) };
        if (bias)
            inputs.Add(Weight(new[] { outC }, 0.5));
        return Node("Conv", inputs,
            Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), Ints("pads", pads), Ints("dilations", 1, 1), Int("group", 1));
    }

    public string BatchNorm(string x, long channels, float epsilon)
    {
        string scale = Weight(new[] { channels }, 0.3, offset: 1);
        string shift = Weight(new[] { channels }, 0.3);
        string mean = Weight(new[] { channels }, 0.5);
        string variance = Weight(new[] { channels }, 0.3, offset: 1, positive: true);
        return Node("BatchNormalization", new[] { x, scale, shift, mean, variance }, Float("epsilon", epsilon));
    }

    public string Relu(string x) => Node("Relu", new[] { x });

    public string Add(string a, string b) => Node("Add", new[] { a, b });

    public string MaxPool(string x) => Node("MaxPool", new[] { x }, Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1));

    public string GlobalAveragePool(string x) => Node("GlobalAveragePool", new[] { x });

    public string Flatten(string x) => Node("Flatten", new[] { x }, Int("axis", 1));

    public string Gemm(string x, long inF, long outF, bool transB, float alpha, float beta)
    {
        string w = Weight(transB ? new[] { outF, inF } : new[] { inF, outF }, 0.3);
        return Node("Gemm", new[] { x, w, Weight(new[] { outF }, 0.3) }, Int("transB", transB ? 1 : 0), Float("alpha", alpha), Float("beta", beta));
    }

    public string MatMulAdd(string x, long inF, long outF) => Add(Node("MatMul", new[] { x, Weight(new[] { inF, outF }, 0.3) }), Weight(new[] { outF }, 0.3));

    public byte[] Build(string output)
    {
        _graph.Output.Add(new ValueInfoProto { Name = output, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } });
        var model = new ModelProto { IrVersion = 7, ProducerName = "test", Graph = _graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    private string Weight(long[] dims, double scale, double offset = 0, bool positive = false)
    {
        string name = $"W{_next++}";
        long count = dims.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double r = (_random.NextDouble() * 2 - 1) * scale;
            values[i] = (float)(offset + (positive ? Math.Abs(r) : r));
        }
        // Alternate the two storage forms so both are exercised.
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, Dims = { dims } };
        if (_next % 2 == 0)
            tensor.FloatData.Add(values);
        else
            tensor.RawData = ByteString.CopyFrom(values.SelectMany(BitConverter.GetBytes).ToArray());
        _graph.Initializer.Add(tensor);
        return name;
    }

    private string Node(string op, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        string output = $"{op}{_next++}_out";
        var node = new NodeProto { OpType = op, Name = $"{op}{_next}", Input = { inputs }, Output = { output } };
        node.Attribute.Add(attributes);
        _graph.Node.Add(node);
        return output;
    }

    private static AttributeProto Ints(string name, params long[] values) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { values } };

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
}
