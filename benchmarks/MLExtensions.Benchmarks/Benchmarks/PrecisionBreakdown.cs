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
/// ResNet-20 block at its largest resolution. Each figure is the median of the timed repetitions after a warm-up.
/// </summary>
internal static class PrecisionBreakdown
{
    public static void Run(TextWriter output, int reps)
    {
        var table = new TextTable("Step (forward + backward)", "ms", "vs float32", "Other load");
        Network(table, "ResNet-20, batch 128, 1×28×28", reps,
            () => new ResNet(ImageArchitecture.ResNet20, 1, 10, smallInputStem: true, generator: null),
            type => randn(128, 1, 28, 28).to(type), output);
        Network(table, "MiniLM L6, batch 16 × 128 tokens", Math.Max(3, reps / 3),
            () => new TextClassifierNetwork(new BertEncoder(BertConfig.MiniLmL6), 2, TextPooling.Mean, 0.1, new Generator(1)),
            _ => PackedTokens(16, 128), output);
        Ops(table, reps, output);
        output.WriteLine();
        output.WriteLine("Breakdown (median ms per forward + backward)");
        table.Write(output);
    }

    private static Tensor PackedTokens(int n, int length)
    {
        var ids = randint(1000, 20000, new long[] { n, length }, dtype: ScalarType.Int64);
        var mask = ones(n, length, dtype: ScalarType.Int64);
        var types = zeros(n, length, dtype: ScalarType.Int64);
        return stack(new[] { ids, mask, types }, 1);
    }

    private static void Network(TextTable table, string name, int reps, Func<nn.Module<Tensor, Tensor>> create, Func<ScalarType, Tensor> input, TextWriter output)
    {
        double f32 = double.NaN;
        foreach (var mode in new[] { "float32", "Autocast bfloat16", "whole network bfloat16", "whole network bfloat16, channels_last" })
        {
            bool image = name.StartsWith("ResNet");
            if (mode.EndsWith("channels_last") && !image)
                continue;
            using var network = create();
            network.train();
            bool whole = mode.StartsWith("whole");
            if (whole)
                network.to(ScalarType.BFloat16);
            using var x = input(whole && image ? ScalarType.BFloat16 : ScalarType.Float32);
            using var xl = mode.EndsWith("channels_last") ? ChannelsLast(x) : x.alias();
            using var attach = mode.StartsWith("Autocast") ? Autocast.Attach(network) : null;
            ScalarType? low = mode.StartsWith("Autocast") ? ScalarType.BFloat16 : null;
            var start = CpuLoad.Take();
            double ms = Median(reps, () =>
            {
                using var scope = NewDisposeScope();
                Tensor y;
                using (Autocast.Enter(low))
                    y = network.call(xl);
                y.to(ScalarType.Float32).sum().backward();
                network.zero_grad();
            });
            if (mode == "float32")
                f32 = ms;
            table.AddRow($"{name}: {mode}", $"{ms:F1}", $"{f32 / ms:F2}×", Load(start));
            output.WriteLine($"  {name}: {mode}: {ms:F1} ms");
        }
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
        double ms = Median(reps, () =>
        {
            using var scope = NewDisposeScope();
            var y = forward();
            y.backward(new[] { ones_like(y) });
        });
        table.AddRow(name, $"{ms:F2}", "", Load(start));
        output.WriteLine($"  {name}: {ms:F2} ms");
    }

    /// <summary>The same NCHW tensor stored channels-last (NHWC strides): TorchSharp 0.107 has no memory_format argument.</summary>
    private static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static double Median(int reps, Action step)
    {
        step(); // warm-up: oneDNN primitive creation, allocator
        step();
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            long t = Stopwatch.GetTimestamp();
            step();
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        return Statistics.Median(times);
    }

    private static string Load(CpuSnapshot start) => CpuLoad.OtherCores(start, CpuLoad.Take()) is double cores ? $"{cores:F2} cores" : "unknown";
}
