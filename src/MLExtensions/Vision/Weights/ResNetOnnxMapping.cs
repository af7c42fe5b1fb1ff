using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>One row of a weight mapping: a torchvision module path and the ONNX node its parameters come from.</summary>
/// <param name="Module">The module path in torchvision naming, e.g. <c>layer2.0.downsample.1</c>.</param>
/// <param name="OpType">
/// The ONNX operator of the source node: <c>Conv</c> for a convolution; <c>BatchNormalization</c> for a batch norm;
/// <c>Conv</c> for a batch norm that the exporter folded into its convolution (identity statistics, the conv's bias
/// as the shift); <c>Gemm</c> or <c>MatMul</c> for the classifier.
/// </param>
/// <param name="NodeName">The ONNX node's name (may be empty in files whose exporter did not name nodes).</param>
/// <param name="NodeIndex">The node's position in the graph's node list.</param>
public sealed record OnnxModuleSource(string Module, string OpType, string NodeName, int NodeIndex);

/// <summary>
/// Maps an ONNX export of a basic-block ResNet (ResNet-18/34 style) onto torchvision's module and parameter names,
/// derived from the graph's topology rather than from the (exporter-generated) tensor names.
/// </summary>
/// <remarks>
/// <para>The procedure (<see cref="FromGraph"/>):</para>
/// <list type="number">
/// <item>Stem: the <c>Conv</c> that reads the graph input is <c>conv1</c>; the <c>BatchNormalization</c> reading its output
/// is <c>bn1</c>; then <c>Relu</c> and <c>MaxPool</c>.</item>
/// <item>Blocks: from the current tensor (the max-pool output, later each block's final <c>Relu</c> output), the
/// <c>Conv</c> whose batch norm feeds a <c>Relu</c> starts the main path (<c>conv1</c>/<c>bn1</c>), the next
/// <c>Conv</c>/<c>BatchNormalization</c> is <c>conv2</c>/<c>bn2</c>, and its output meets the shortcut in an <c>Add</c>.
/// A second <c>Conv</c> reading the current tensor whose batch norm feeds that <c>Add</c> directly is the projection
/// shortcut (<c>downsample.0</c>/<c>downsample.1</c>). The <c>Relu</c> after the <c>Add</c> is the block output.</item>
/// <item>Stages: the first block opens <c>layer1</c>; a block whose first convolution has stride &gt; 1 or changes the
/// channel count opens the next stage. Blocks are numbered from 0 within a stage.</item>
/// <item>Head: an average pooling of the last block's output, then optionally <c>Flatten</c>/<c>Reshape</c> and a
/// <c>Gemm</c> (or <c>MatMul</c> + <c>Add</c>), which becomes <c>fc</c>. A graph that stops at the pooling has no <c>fc</c>.</item>
/// </list>
/// <para>Conversion rules (<see cref="ToStateDict"/>): a convolution's weight is copied as is (ONNX and torch share the
/// [out, in, kH, kW] layout). A batch norm gives <c>weight</c>=scale, <c>bias</c>=B, <c>running_mean</c>=mean,
/// <c>running_var</c>=var and <c>num_batches_tracked</c>=0. Two exact rewrites keep the function identical for
/// torchvision modules (bias-free convolutions, batch-norm epsilon 1e-5): a convolution bias b is moved into the
/// following batch norm as <c>running_mean</c> − b, and an epsilon e ≠ 1e-5 becomes <c>running_var</c> + e − 1e-5. A
/// batch norm folded into its convolution becomes one with weight 1, running mean 0, running variance 1 − 1e-5 (so
/// that var + eps = 1) and the convolution's bias as its bias. <c>fc.weight</c> is [out, in] (Gemm's B transposed
/// when <c>transB</c> = 0, MatMul's weight transposed), scaled by Gemm's alpha; <c>fc.bias</c> by beta.</para>
/// </remarks>
public sealed class ResNetOnnxMapping
{
    /// <summary>Batch-norm epsilon of torchvision's (and TorchSharp's default) <c>BatchNorm2d</c>.</summary>
    public const double TorchBatchNormEpsilon = 1e-5;

    private ResNetOnnxMapping(IReadOnlyList<int> blocksPerStage, IReadOnlyList<OnnxModuleSource> modules, string inputName, string featureTensor, IReadOnlyList<string> notes)
    {
        BlocksPerStage = blocksPerStage;
        Modules = modules;
        InputName = inputName;
        FeatureTensor = featureTensor;
        Notes = notes;
    }

    /// <summary>Basic blocks per stage (<c>layer1</c>..<c>layerN</c>) found in the graph; torchvision's ResNet-18 has [2, 2, 2, 2].</summary>
    public IReadOnlyList<int> BlocksPerStage { get; }

    /// <summary>The mapping table, in torchvision state-dict order.</summary>
    public IReadOnlyList<OnnxModuleSource> Modules { get; }

    /// <summary>Whether the graph contains the classifier (<c>fc</c>).</summary>
    public bool HasClassifier => Modules.Count > 0 && Modules[^1].Module == "fc";

    /// <summary>The graph input the stem reads.</summary>
    public string InputName { get; }

    /// <summary>The tensor holding the pooled features (the output of the average pooling).</summary>
    public string FeatureTensor { get; }

    /// <summary>Observations about the export that matter for equivalence (padding, folded or rewritten batch norms), one sentence each.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The state-dict keys <see cref="ToStateDict"/> produces, in order.</summary>
    public IEnumerable<string> StateDictKeys => Modules.SelectMany(m => KeysOf(m));

    /// <summary>Derives the mapping from the graph of <paramref name="model"/> (see the remarks for the procedure).</summary>
    /// <exception cref="NotSupportedException">The graph is not a basic-block ResNet; the message names the node where the walk stopped.</exception>
    public static ResNetOnnxMapping FromGraph(OnnxModelReader model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new GraphWalk(model).Run();
    }

    /// <summary>
    /// Reads the mapped parameters from <paramref name="model"/> into a torchvision-style state dict (CPU float32
    /// tensors; <c>num_batches_tracked</c> is an int64 scalar). The caller owns and disposes the tensors.
    /// </summary>
    /// <exception cref="InvalidDataException">The model does not match this mapping, or a tensor is corrupt.</exception>
    public Dictionary<string, Tensor> ToStateDict(OnnxModelReader model)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchNativeLoader.EnsureLoaded();
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in Modules)
            {
                var node = NodeOf(model, entry);
                foreach (var (key, values, dims) in Convert(model, entry, node))
                    result.Add(key, torch.tensor(values, dims));
                if (IsBatchNorm(entry))
                    result.Add(entry.Module + ".num_batches_tracked", torch.tensor(0L));
            }
        }
        catch
        {
            foreach (var t in result.Values)
                t.Dispose();
            throw;
        }
        return result;
    }

    private static bool IsBatchNorm(OnnxModuleSource entry) =>
        entry.Module.EndsWith("bn1", StringComparison.Ordinal) || entry.Module.EndsWith("bn2", StringComparison.Ordinal) || entry.Module.EndsWith("downsample.1", StringComparison.Ordinal);

    private static IEnumerable<string> KeysOf(OnnxModuleSource entry)
    {
        if (IsBatchNorm(entry))
            return new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }.Select(p => entry.Module + "." + p);
        return entry.Module == "fc" ? new[] { "fc.weight", "fc.bias" } : new[] { entry.Module + ".weight" };
    }

    private static OnnxNode NodeOf(OnnxModelReader model, OnnxModuleSource entry)
    {
        if (entry.NodeIndex >= model.Nodes.Count || model.Nodes[entry.NodeIndex].OpType != entry.OpType || model.Nodes[entry.NodeIndex].Name != entry.NodeName)
            throw new InvalidDataException($"{model.Source} does not match this mapping: node {entry.NodeIndex} should be {entry.OpType} '{entry.NodeName}' (for {entry.Module}).");
        return model.Nodes[entry.NodeIndex];
    }

    private static IEnumerable<(string Key, float[] Values, long[] Dims)> Convert(OnnxModelReader model, OnnxModuleSource entry, OnnxNode node)
    {
        float[] Read(string name, out long[] dims)
        {
            var t = model.GetInitializer(name);
            dims = t.Dims.ToArray();
            return t.ToFloatArray();
        }

        if (entry.Module == "fc")
        {
            foreach (var p in ConvertClassifier(model, node, Read))
                yield return p;
            yield break;
        }

        if (!IsBatchNorm(entry))
        {
            yield return (entry.Module + ".weight", Read(node.Inputs[1], out var w), w);
            yield break;
        }

        if (node.OpType == "Conv")
        {
            // Folded batch norm: the convolution already includes the normalization; keep it and make the batch norm
            // an identity followed by the convolution's bias.
            long channels = model.GetInitializer(node.Inputs[1]).Dims[0];
            var bias = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? Read(node.Inputs[2], out _) : new float[channels];
            yield return (entry.Module + ".weight", Enumerable.Repeat(1f, (int)channels).ToArray(), new[] { channels });
            yield return (entry.Module + ".bias", bias, new[] { channels });
            yield return (entry.Module + ".running_mean", new float[channels], new[] { channels });
            yield return (entry.Module + ".running_var", Enumerable.Repeat((float)(1 - TorchBatchNormEpsilon), (int)channels).ToArray(), new[] { channels });
            yield break;
        }

        var scale = Read(node.Inputs[1], out var dims);
        var shift = Read(node.Inputs[2], out _);
        var mean = Read(node.Inputs[3], out _);
        var variance = Read(node.Inputs[4], out _);
        var conv = model.ProducerOf(node.Inputs[0]);
        if (conv is { OpType: "Conv" } && conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
        {
            var convBias = Read(conv.Inputs[2], out _);
            for (int i = 0; i < mean.Length; i++)
                mean[i] -= convBias[i];
        }
        double epsilon = node.GetFloat("epsilon", 1e-5f);
        if (Math.Abs(epsilon - TorchBatchNormEpsilon) > 1e-12)
        {
            for (int i = 0; i < variance.Length; i++)
                variance[i] = (float)(variance[i] + epsilon - TorchBatchNormEpsilon);
        }
        yield return (entry.Module + ".weight", scale, dims);
        yield return (entry.Module + ".bias", shift, dims);
        yield return (entry.Module + ".running_mean", mean, dims);
        yield return (entry.Module + ".running_var", variance, dims);
    }

    private delegate float[] InitializerReader(string name, out long[] dims);

    private static IEnumerable<(string, float[], long[])> ConvertClassifier(OnnxModelReader model, OnnxNode node, InitializerReader read)
    {
        float[] weight;
        long[] dims;
        float[] bias;
        if (node.OpType == "Gemm")
        {
            weight = read(node.Inputs[1], out dims);
            if (node.GetInt("transB", 0) == 0)
                (weight, dims) = (Transpose(weight, dims), new[] { dims[1], dims[0] });
            float alpha = node.GetFloat("alpha", 1f), beta = node.GetFloat("beta", 1f);
            if (alpha != 1f)
                weight = Array.ConvertAll(weight, v => v * alpha);
            bias = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? Array.ConvertAll(read(node.Inputs[2], out _), v => v * beta) : new float[dims[0]];
        }
        else
        {
            var w = read(node.Inputs[1], out var wDims);
            (weight, dims) = (Transpose(w, wDims), new[] { wDims[1], wDims[0] });
            var add = model.ConsumersOf(node.Outputs[0]).Single(n => n.OpType == "Add");
            string biasName = add.Inputs.First(i => i != node.Outputs[0]);
            bias = read(biasName, out _);
        }
        if (bias.Length != dims[0])
            throw new InvalidDataException($"The classifier bias in {model.Source} has {bias.Length} values for {dims[0]} outputs.");
        yield return ("fc.weight", weight, dims);
        yield return ("fc.bias", bias, new[] { dims[0] });
    }

    private static float[] Transpose(float[] values, long[] dims)
    {
        long rows = dims[0], cols = dims[1];
        var result = new float[values.Length];
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++)
                result[c * rows + r] = values[r * cols + c];
        return result;
    }

    /// <summary>The topology walk of <see cref="FromGraph"/>.</summary>
    private sealed class GraphWalk
    {
        private readonly OnnxModelReader _model;
        private readonly List<OnnxModuleSource> _modules = new();
        private readonly List<string> _notes = new();

        public GraphWalk(OnnxModelReader model) => _model = model;

        public ResNetOnnxMapping Run()
        {
            var input = _model.Inputs.FirstOrDefault() ?? throw Unsupported("the graph has no input");
            var stem = Next(input.Name, "Conv", "the graph input");
            CheckConv(stem, kernel: 7, "conv1");
            var stemUnit = Unit(stem, "conv1", "bn1");
            var relu = Next(stemUnit, "Relu", "bn1");
            var pool = Next(relu.Outputs[0], "MaxPool", "the stem's Relu");
            CheckPads(pool, "the stem's max pooling");

            var blocksPerStage = new List<int>();
            string current = pool.Outputs[0];
            long channels = ChannelsOf(stem);
            while (true)
            {
                var convs = _model.ConsumersOf(current).Where(n => n.OpType == "Conv").ToList();
                if (convs.Count == 0)
                    break;
                if (convs.Count > 2)
                    throw Unsupported($"tensor '{current}' feeds {convs.Count} convolutions; a basic block has at most two (main path and projection)");
                var main = convs.FirstOrDefault(c => OutputOf(c) is var o && _model.ConsumersOf(o).Any(n => n.OpType == "Relu"))
                    ?? throw Unsupported($"no convolution reading '{current}' is followed by a ReLU");
                var projection = convs.FirstOrDefault(c => c != main);

                long stride = main.GetInts("strides").DefaultIfEmpty(1).Max();
                long outChannels = ChannelsOf(main);
                if (blocksPerStage.Count == 0 || stride > 1 || outChannels != channels)
                    blocksPerStage.Add(0);
                string prefix = $"layer{blocksPerStage.Count}.{blocksPerStage[^1]}";

                CheckConv(main, kernel: 3, prefix + ".conv1");
                string mainOut = Unit(main, prefix + ".conv1", prefix + ".bn1");
                var innerRelu = Next(mainOut, "Relu", prefix + ".bn1");
                var second = Next(innerRelu.Outputs[0], "Conv", prefix + ".bn1's ReLU");
                CheckConv(second, kernel: 3, prefix + ".conv2");
                string secondOut = Unit(second, prefix + ".conv2", prefix + ".bn2");
                if (_model.ConsumersOf(secondOut).Any(n => n.OpType == "Relu"))
                    throw Unsupported($"{prefix}.bn2 is followed by a ReLU: this looks like a bottleneck block (ResNet-50 and deeper), which is not supported");
                var add = Next(secondOut, "Add", prefix + ".bn2");

                string shortcut = current;
                if (projection is not null)
                {
                    CheckConv(projection, kernel: 1, prefix + ".downsample.0");
                    shortcut = Unit(projection, prefix + ".downsample.0", prefix + ".downsample.1");
                }
                if (!add.Inputs.Contains(shortcut))
                    throw Unsupported($"the Add '{add.Name}' after {prefix}.bn2 does not read the block's shortcut '{shortcut}'");

                current = Next(add.Outputs[0], "Relu", $"the residual Add of {prefix}").Outputs[0];
                channels = outChannels;
                blocksPerStage[^1]++;
            }
            if (blocksPerStage.Count == 0)
                throw Unsupported($"no residual block follows the stem's max pooling '{pool.Name}'");

            var head = _model.ConsumersOf(current).FirstOrDefault(n => n.OpType is "GlobalAveragePool" or "AveragePool" or "ReduceMean")
                ?? throw Unsupported($"the last block's output '{current}' is not average-pooled");
            string features = head.Outputs[0];
            string tail = features;
            while (_model.ConsumersOf(tail) is [{ OpType: "Flatten" or "Reshape" or "Squeeze" } reshape])
                tail = reshape.Outputs[0];
            var classifier = _model.ConsumersOf(tail).FirstOrDefault(n => n.OpType is "Gemm" or "MatMul");
            if (classifier is not null)
            {
                if (classifier.OpType == "Gemm" && classifier.GetInt("transA", 0) != 0)
                    throw Unsupported($"the classifier Gemm '{classifier.Name}' transposes its input (transA=1)");
                if (classifier.OpType == "MatMul" && !_model.ConsumersOf(classifier.Outputs[0]).Any(n => n.OpType == "Add"))
                    throw Unsupported($"the classifier MatMul '{classifier.Name}' is not followed by a bias Add");
                Add("fc", classifier);
            }
            else
            {
                _notes.Add("The graph ends at the pooled features; there is no classifier (fc).");
            }
            return new ResNetOnnxMapping(blocksPerStage, _modules, input.Name, features, _notes);
        }

        /// <summary>Records a convolution and its batch norm (or the folded one); returns the unit's output tensor.</summary>
        private string Unit(OnnxNode conv, string convModule, string bnModule)
        {
            Add(convModule, conv);
            var bn = _model.ConsumersOf(conv.Outputs[0]).FirstOrDefault(n => n.OpType == "BatchNormalization");
            if (bn is null)
            {
                Add(bnModule, conv);
                _notes.Add($"{bnModule}: no BatchNormalization after Conv '{conv.Name}' (folded into the convolution); mapped to an identity batch norm with the convolution's bias.");
                return conv.Outputs[0];
            }
            if (bn.GetInt("spatial", 1) != 1)
                throw Unsupported($"BatchNormalization '{bn.Name}' is not spatial (spatial=0)");
            Add(bnModule, bn);
            if (conv.Inputs.Count > 2 && conv.Inputs[2].Length > 0)
                _notes.Add($"{convModule}: Conv '{conv.Name}' has a bias; it is moved into {bnModule}.running_mean.");
            float epsilon = bn.GetFloat("epsilon", 1e-5f);
            if (Math.Abs(epsilon - TorchBatchNormEpsilon) > 1e-12)
                _notes.Add($"{bnModule}: epsilon {epsilon} is folded into running_var (torch uses 1e-5).");
            return bn.Outputs[0];
        }

        private void Add(string module, OnnxNode node) => _modules.Add(new OnnxModuleSource(module, node.OpType, node.Name, node.Index));

        private long ChannelsOf(OnnxNode conv) => _model.GetInitializer(conv.Inputs[1]).Dims[0];

        private string OutputOf(OnnxNode conv) =>
            _model.ConsumersOf(conv.Outputs[0]).FirstOrDefault(n => n.OpType == "BatchNormalization")?.Outputs[0] ?? conv.Outputs[0];

        private OnnxNode Next(string tensor, string opType, string after)
        {
            var found = _model.ConsumersOf(tensor).Where(n => n.OpType == opType).ToList();
            return found.Count == 1
                ? found[0]
                : throw Unsupported($"expected one {opType} after {after} (tensor '{tensor}'), found {found.Count}");
        }

        private void CheckConv(OnnxNode conv, int kernel, string module)
        {
            if (!_model.TryGetInitializer(conv.Inputs[1], out var weight) || weight.Dims.Count != 4)
                throw Unsupported($"{module} (Conv '{conv.Name}') has no constant 4-d weight");
            if (weight.Dims[2] != kernel || weight.Dims[3] != kernel)
                throw Unsupported($"{module} (Conv '{conv.Name}') has a {weight.Dims[2]}x{weight.Dims[3]} kernel, expected {kernel}x{kernel}");
            if (conv.GetInt("group", 1) != 1 || conv.GetInts("dilations").Any(d => d != 1))
                throw Unsupported($"{module} (Conv '{conv.Name}') is grouped or dilated");
            CheckPads(conv, $"{module} (Conv '{conv.Name}')");
        }

        private void CheckPads(OnnxNode node, string what)
        {
            var pads = node.GetInts("pads");
            string autoPad = node.Attributes.TryGetValue("auto_pad", out var a) && a.Kind == OnnxAttributeKind.String ? a.String : "NOTSET";
            if (autoPad is not ("NOTSET" or ""))
            {
                _notes.Add($"{what}: auto_pad={autoPad}; torchvision pads symmetrically by kernel/2.");
                return;
            }
            long kernel = node.GetInts("kernel_shape").DefaultIfEmpty(_model.TryGetInitializer(node.Inputs.ElementAtOrDefault(1) ?? "", out var w) ? w.Dims[2] : 1).First();
            long expected = kernel / 2;
            if (pads.Count == 4 && (pads[0] != expected || pads[1] != expected))
                throw Unsupported($"{what} pads its start by [{pads[0]}, {pads[1]}]; torchvision pads by {expected}");
            if (pads.Count == 4 && (pads[2] != expected || pads[3] != expected))
            {
                _notes.Add($"{what}: asymmetric pads [{string.Join(", ", pads)}] (torchvision: {expected} on every side); " +
                    "the outputs are the same when the input height and width are even, as they are at 224x224 in every layer that downsamples.");
            }
        }

        private NotSupportedException Unsupported(string what) =>
            new($"{_model.Source} is not a basic-block ResNet this mapping understands: {what}.");
    }
}
