using System.Diagnostics;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Where the time of one training step goes in float32 and bfloat16 (<c>precision --part breakdown</c>): forward+backward
/// of ResNet-20 (batch 128, 28×28) and MiniLM (batch 16 × 128 tokens) in float32, through <see cref="Autocast"/>, and as a
/// network converted wholesale to bfloat16 (the ceiling: no casts at all, nothing kept in float32), plus the single ops of a
/// ResNet-20 block at its largest resolution. The modes of a network alternate within each round; the minimum over rounds is the
/// least disturbed figure on a shared machine, the median is shown next to it.
/// </summary>
internal static class PrecisionBreakdown
{
    public static void Run(TextWriter output, int reps)
    {
        var table = new TextTable("Step (forward + backward)", "ms (min / median)", "vs float32", "Other load");
        Network(table, "ResNet-20, batch 128, 1×28×28", reps,
            () => new ResNet(ImageArchitecture.ResNet20, 1, 10, smallInputStem: true, generator: null),
            type => randn(128, 1, 28, 28).to(type), ResNet20Convolutions, output);
        Network(table, "MiniLM L6, batch 16 × 128 tokens", Math.Max(3, reps / 3),
            () => new TextClassifierNetwork(new BertEncoder(BertConfig.MiniLmL6), 2, TextPooling.Mean, 0.1, new Generator(1)),
            _ => PackedTokens(16, 128), MiniLmProducts, output);
        Ops(table, reps, output);
        output.WriteLine();
        output.WriteLine("Breakdown (ms per forward + backward: minimum / median of the rounds; ratio of minima)");
        table.Write(output);
    }

    /// <summary>
    /// The scoring levers on the text classifier's network (MiniLM L6, evaluation mode) at batch 1 and 32: no_grad against
    /// inference_mode, explicit against fused attention, float32 against bfloat16 autocast (weights cast once). The largest
    /// logit change against the explicit float32 no_grad pass (the former default) says whether a lever changes predictions.
    /// </summary>
    public static void Scoring(TextWriter output, int reps)
    {
        var table = new TextTable("Text classifier network forward", "ms (min / median)", "vs baseline", "max |Δ logit|", "Other load");
        using var network = new TextClassifierNetwork(new BertEncoder(BertConfig.MiniLmL6, new Generator(3)), 2, TextPooling.Mean, 0.1, new Generator(1));
        network.eval();
        using var attachment = Autocast.Attach(network);
        foreach (var (n, length) in new[] { (1, 64), (32, 128) })
        {
            using var x = PackedTokens(n, length);
            var levers = new (string Name, bool Inference, bool Fused, ScalarType? Low)[]
            {
                ("float32, no_grad, explicit attention (former default)", false, false, null),
                ("float32, inference_mode, explicit attention", true, false, null),
                ("float32, no_grad, fused attention", false, true, null),
                ("float32, inference_mode, fused attention", true, true, null),
                ("bfloat16 autocast, no_grad, fused attention", false, true, ScalarType.BFloat16),
                ("bfloat16 autocast, inference_mode, fused attention", true, true, ScalarType.BFloat16),
            };
            var logits = new Tensor[levers.Length];
            var steps = levers.Select((lever, i) => (Action)(() =>
            {
                BertEncoder.FusedAttention = lever.Fused;
                using var mode = lever.Inference ? (IDisposable)inference_mode() : no_grad();
                using var scope = NewDisposeScope();
                using var precision = Autocast.Enter(lever.Low);
                var y = network.call(x);
                logits[i]?.Dispose();
                logits[i] = y.clone().DetachFromDisposeScope();
            })).ToList();
            bool fusedBefore = BertEncoder.FusedAttention;
            var start = CpuLoad.Take();
            var times = Interleaved(reps, steps);
            BertEncoder.FusedAttention = fusedBefore;
            string load = Load(start);
            for (int i = 0; i < levers.Length; i++)
            {
                double change = logits[i].sub(logits[0]).abs().max().item<float>();
                table.AddRow($"batch {n} × {length} tokens: {levers[i].Name}", $"{times[i].Min():F1} / {Statistics.Median(times[i]):F1}",
                    $"{times[0].Min() / times[i].Min():F2}×", $"{change:G3}", load);
                output.WriteLine($"  batch {n} × {length}: {levers[i].Name}: min {times[i].Min():F1} ms, max |Δ logit| {change:G3}");
            }
            foreach (var t in logits)
                t.Dispose();
        }
        output.WriteLine();
        output.WriteLine("Scoring levers (ms per forward: minimum / median of the rounds; speed-up of minima)");
        table.Write(output);
    }

    private static Tensor PackedTokens(int n, int length)
    {
        var ids = randint(1000, 20000, new long[] { n, length }, dtype: ScalarType.Int64);
        var mask = ones(n, length, dtype: ScalarType.Int64);
        var types = zeros(n, length, dtype: ScalarType.Int64);
        return stack(new[] { ids, mask, types }, 1);
    }

    private static void Network(TextTable table, string name, int reps, Func<nn.Module<Tensor, Tensor>> create, Func<ScalarType, Tensor> input,
        Func<ScalarType, Action> productsOnly, TextWriter output)
    {
        bool image = name.StartsWith("ResNet");
        var modes = new List<string> { "float32", "Autocast bfloat16", "whole network bfloat16" };
        if (image)
            modes.Add("whole network bfloat16, channels_last input");
        // The modes alternate within each round (a busy, shared machine changes speed from one minute to the next).
        var steps = new List<Action>();
        var disposables = new List<IDisposable>();
        foreach (var mode in modes)
        {
            var network = create();
            network.train();
            bool whole = mode.StartsWith("whole");
            if (whole)
                network.to(ScalarType.BFloat16);
            var x = input(whole && image ? ScalarType.BFloat16 : ScalarType.Float32);
            if (mode.EndsWith("channels_last input"))
                x = ChannelsLast(x);
            ScalarType? low = mode.StartsWith("Autocast") ? ScalarType.BFloat16 : null;
            if (low is not null)
                disposables.Add(Autocast.Attach(network));
            disposables.Add(network);
            disposables.Add(x);
            steps.Add(() =>
            {
                using var scope = NewDisposeScope();
                Tensor y;
                using (Autocast.Enter(low))
                    y = network.call(x);
                y.to(ScalarType.Float32).sum().backward();
                network.zero_grad();
            });
        }
        // The same products alone (same shapes, forward + backward, no other op): their share of a step.
        modes.Add("its convolutions / matrix products alone, float32");
        steps.Add(productsOnly(ScalarType.Float32));
        modes.Add("its convolutions / matrix products alone, bfloat16");
        steps.Add(productsOnly(ScalarType.BFloat16));
        var start = CpuLoad.Take();
        var times = Interleaved(reps, steps);
        string load = Load(start);
        double f32 = times[0].Min();
        for (int i = 0; i < modes.Count; i++)
        {
            // Product rows: their share of the float32 step (float32 products) or of the Autocast step (bfloat16 products).
            string ratio = !modes[i].StartsWith("its") ? $"{f32 / times[i].Min():F2}×"
                : modes[i].EndsWith("float32") ? $"{times[i].Min() / f32:P0} of the float32 step" : $"{times[i].Min() / times[1].Min():P0} of the Autocast step";
            table.AddRow($"{name}: {modes[i]}", $"{times[i].Min():F1} / {Statistics.Median(times[i]):F1}", ratio, load);
            output.WriteLine($"  {name}: {modes[i]}: min {times[i].Min():F1} ms, median {Statistics.Median(times[i]):F1} ms");
        }
        foreach (var d in Enumerable.Reverse(disposables))
            d.Dispose();
    }

    /// <summary>Runs every step <paramref name="reps"/> times in alternation after two warm-up rounds; the times of each step.</summary>
    private static List<double>[] Interleaved(int reps, IReadOnlyList<Action> steps)
    {
        var times = steps.Select(_ => new List<double>()).ToArray();
        for (int round = -2; round < reps; round++)
        {
            for (int i = 0; i < steps.Count; i++)
            {
                long t = Stopwatch.GetTimestamp();
                steps[i]();
                if (round >= 0)
                    times[i].Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
        }
        return times;
    }

    /// <summary>Forward + backward of ResNet-20's nineteen convolutions and two 1×1 shortcuts at their real shapes, batch 128.</summary>
    private static Action ResNet20Convolutions(ScalarType type)
    {
        var layers = new List<(long In, long Out, long Kernel, long Stride, long Size)> { (1, 16, 3, 1, 28) };
        foreach (var (width, size, first) in new[] { (16L, 28L, true), (32L, 14L, false), (64L, 7L, false) })
        {
            long inputs = first ? 16 : width / 2;
            long inputSize = first ? size : size * 2;
            layers.Add((inputs, width, 3, first ? 1 : 2, inputSize));
            if (!first)
                layers.Add((inputs, width, 1, 2, inputSize));
            for (int i = 0; i < 5; i++)
                layers.Add((width, width, 3, 1, size));
        }
        var weights = layers.Select(l => randn(l.Out, l.In, l.Kernel, l.Kernel).to(type).requires_grad_()).ToArray();
        var inputsOf = layers.Select(l => randn(128, l.In, l.Size, l.Size).to(type).requires_grad_()).ToArray();
        return () =>
        {
            using var scope = NewDisposeScope();
            for (int i = 0; i < layers.Count; i++)
            {
                long pad = layers[i].Kernel / 2;
                var y = nn.functional.conv2d(inputsOf[i], weights[i], null, new[] { layers[i].Stride, layers[i].Stride }, new[] { pad, pad });
                y.backward(new[] { ones_like(y) });
            }
        };
    }

    /// <summary>Forward + backward of MiniLM L6's Linear layers and attention products at batch 16 × 128 tokens.</summary>
    private static Action MiniLmProducts(ScalarType type)
    {
        const int tokens = 16 * 128, hidden = 384, inner = 1536, heads = 12, length = 128;
        var shapes = new[] { (hidden, hidden), (hidden, hidden), (hidden, hidden), (hidden, hidden), (hidden, inner), (inner, hidden) };
        var weights = shapes.Select(s => randn(s.Item2, s.Item1).to(type).requires_grad_()).ToArray();
        var inputsOf = shapes.Select(s => randn(tokens, s.Item1).to(type).requires_grad_()).ToArray();
        var q = randn(16, heads, length, hidden / heads).to(type).requires_grad_();
        var k = randn(16, heads, hidden / heads, length).to(type).requires_grad_();
        var p = randn(16, heads, length, length).to(type).requires_grad_();
        return () =>
        {
            for (int layer = 0; layer < 6; layer++)
            {
                using var scope = NewDisposeScope();
                for (int i = 0; i < shapes.Length; i++)
                {
                    var y = nn.functional.linear(inputsOf[i], weights[i]);
                    y.backward(new[] { ones_like(y) });
                }
                var scores = matmul(q, k);
                scores.backward(new[] { ones_like(scores) });
                var context = matmul(p, q);
                context.backward(new[] { ones_like(context) });
            }
        };
    }

    private static void Ops(TextTable table, int reps, TextWriter output)
    {
        // ResNet-20's first stage: 16 channels at 28×28, batch 128 — nine of its nineteen convolutions run at this size.
        var shape = new long[] { 128, 16, 28, 28 };
        foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            foreach (bool channelsLast in new[] { false, true })
            {
                string tag = $"{(type == ScalarType.Float32 ? "float32" : "bfloat16")}{(channelsLast ? " channels_last" : "")}";
                using var conv = nn.Conv2d(16, 16, 3, padding: 1, bias: false);
                conv.to(type);
                using var bn = nn.BatchNorm2d(16); // float32 parameters whatever the input: the mixed form autocast would use
                bn.train();
                using var dense = randn(shape).to(type);
                using var x = (channelsLast ? ChannelsLast(dense) : dense.alias()).detach().requires_grad_();
                Op(table, $"conv3×3 16→16, 128×28×28, {tag}", reps, output, () => conv.call(x));
                Op(table, $"BatchNorm2d(16) train, {tag} input", reps, output, () => bn.call(x));
                Op(table, $"ReLU, {tag}", reps, output, () => nn.functional.relu(x));
                Op(table, $"residual add, {tag}", reps, output, () => x.add(x));
                if (type == ScalarType.Float32 && !channelsLast)
                    Op(table, "cast float32→bfloat16→float32 (what the old hook did per conv)", reps, output, () => x.to(ScalarType.BFloat16).to(ScalarType.Float32));
            }
        }
    }

    private static void Op(TextTable table, string name, int reps, TextWriter output, Func<Tensor> forward)
    {
        var start = CpuLoad.Take();
        var times = Interleaved(reps, new Action[] { () =>
        {
            using var scope = NewDisposeScope();
            var y = forward();
            y.backward(new[] { ones_like(y) });
        } })[0];
        table.AddRow(name, $"{times.Min():F2} / {Statistics.Median(times):F2}", "", Load(start));
        output.WriteLine($"  {name}: min {times.Min():F2} ms, median {Statistics.Median(times):F2} ms");
    }

    /// <summary>The same NCHW tensor stored channels-last (NHWC strides): TorchSharp 0.107 has no memory_format argument.</summary>
    private static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static string Load(CpuSnapshot start) => CpuLoad.OtherCores(start, CpuLoad.Take()) is double cores ? $"{cores:F2} cores" : "unknown";
}
