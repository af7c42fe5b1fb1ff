using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Core.Precision;

/// <summary>
/// The autocast mechanism on single layers: inside a scope an attached Linear/Conv2d returns exactly the product computed
/// independently in bfloat16, outside it (or once detached) exactly the float32 forward; gradients reach float32 weights.
/// </summary>
public class AutocastTests
{
    public AutocastTests() => TorchNativeLoader.EnsureLoaded();

    private static Tensor BFloat16Linear(TorchSharp.Modules.Linear l, Tensor x) =>
        nn.functional.linear(x.to(bfloat16), l.weight!.to(bfloat16), l.bias!.to(bfloat16)).to(float32);

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void LinearComputesInBFloat16OnlyInsideAScopeAndOnlyWhileAttached()
    {
        torch.manual_seed(1);
        var linear = nn.Linear(64, 32);
        var x = torch.randn(8, 64);
        var float32Output = nn.functional.linear(x, linear.weight!, linear.bias!);
        var bf16Output = BFloat16Linear(linear, x);
        Assert.True(float32Output.sub(bf16Output).abs().max().item<float>() > 1e-4, "bfloat16 and float32 products should differ");

        using (Autocast.Attach(linear))
        {
            Assert.True(Same(linear.call(x), float32Output), "outside a scope the attached layer must compute in float32");
            using (Autocast.Enter(ScalarType.BFloat16))
            {
                var inside = linear.call(x);
                Assert.Equal(float32, inside.dtype);
                Assert.Equal(new long[] { 8, 32 }, inside.shape);
                Assert.True(Same(inside, bf16Output), "inside a scope the layer must return the bfloat16 product");
                using (Autocast.Enter(null))
                    Assert.True(Same(linear.call(x), float32Output), "a nested float32 scope must compute in float32");
            }
            Assert.Null(Autocast.Current);
        }
        using (Autocast.Enter(ScalarType.BFloat16))
            Assert.True(Same(linear.call(x), float32Output), "a detached layer must ignore the scope");
    }

    [Fact]
    public void ConvolutionAndMatMulComputeInBFloat16InsideAScope()
    {
        torch.manual_seed(2);
        var conv = nn.Conv2d(3, 8, kernel_size: 3, stride: 2, padding: 1);
        var images = torch.randn(2, 3, 9, 9);
        var expected = nn.functional.conv2d(images.to(bfloat16), conv.weight!.to(bfloat16), conv.bias!.to(bfloat16),
            new long[] { 2, 2 }, new long[] { 1, 1 }, new long[] { 1, 1 }, 1).to(float32);
        var a = torch.randn(2, 4, 5, 16);
        var b = torch.randn(2, 4, 16, 5);
        using (Autocast.Attach(conv))
        using (Autocast.Enter(ScalarType.BFloat16))
        {
            Assert.True(Same(conv.call(images), expected));
            var product = Autocast.MatMul(a, b);
            Assert.Equal(bfloat16, product.dtype); // stays bfloat16 for the ops that follow, like PyTorch's autocast
            Assert.True(Same(product, torch.matmul(a.to(bfloat16), b.to(bfloat16))));
            // Mixed operands (softmax output in float32, values in bfloat16) are both computed in bfloat16.
            Assert.True(Same(Autocast.MatMul(a, b.to(bfloat16)), product));
        }
        Assert.True(Same(Autocast.MatMul(a, b), torch.matmul(a, b)));
    }

    [Fact]
    public void ActivationsStayInBFloat16BetweenLayersAndTheNetworkReturnsFloat32()
    {
        // Oracle: the same network written out with functional ops — bfloat16 products, LayerNorm and BatchNorm with their
        // float32 parameters applied to the bfloat16 activations, GELU/ReLU on bfloat16 — then the output cast to float32.
        torch.manual_seed(4);
        var dense = nn.Sequential(("in", nn.Linear(16, 32)), ("norm", nn.LayerNorm(32)), ("act", nn.GELU()), ("out", nn.Linear(32, 8)));
        var convolutional = nn.Sequential(("conv", nn.Conv2d(3, 4, kernel_size: 3, padding: 1)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
            ("flat", nn.Flatten()), ("fc", nn.Linear(4 * 5 * 5, 3)));
        convolutional.eval();
        var x = torch.randn(6, 16);
        var images = torch.randn(2, 3, 5, 5);
        var l1 = (TorchSharp.Modules.Linear)dense[0];
        var norm = (TorchSharp.Modules.LayerNorm)dense[1];
        var l2 = (TorchSharp.Modules.Linear)dense[3];
        var hidden = nn.functional.layer_norm(nn.functional.linear(x.to(bfloat16), l1.weight!.to(bfloat16), l1.bias!.to(bfloat16)),
            new long[] { 32 }, norm.weight!, norm.bias!, 1e-5);
        var expectedDense = nn.functional.linear(nn.functional.gelu(hidden), l2.weight!.to(bfloat16), l2.bias!.to(bfloat16)).to(float32);
        var conv = (TorchSharp.Modules.Conv2d)convolutional[0];
        var bn = (TorchSharp.Modules.BatchNorm2d)convolutional[1];
        var fc = (TorchSharp.Modules.Linear)convolutional[4];
        var features = nn.functional.conv2d(images.to(bfloat16), conv.weight!.to(bfloat16), conv.bias!.to(bfloat16), padding: new long[] { 1, 1 });
        features = nn.functional.batch_norm(features, bn.running_mean!, bn.running_var!, bn.weight!, bn.bias!, false, 0.1, 1e-5).relu();
        var expectedConvolutional = nn.functional.linear(features.flatten(1), fc.weight!.to(bfloat16), fc.bias!.to(bfloat16)).to(float32);
        var normInputs = new List<ScalarType>();
        norm.register_forward_hook((_, input, _) => { normInputs.Add(input.dtype); return null; });
        using (Autocast.Attach(dense))
        using (Autocast.Attach(convolutional))
        using (Autocast.Enter(ScalarType.BFloat16))
        {
            var denseOutput = dense.call(x);
            var convolutionalOutput = convolutional.call(images);
            Assert.Equal(float32, denseOutput.dtype);
            Assert.Equal(float32, convolutionalOutput.dtype);
            Assert.True(Same(denseOutput, expectedDense), "the dense network must match its functional bfloat16 form");
            Assert.True(Same(convolutionalOutput, expectedConvolutional), "the convolutional network must match its functional bfloat16 form");
        }
        Assert.Equal(new[] { bfloat16 }, normInputs);
        Assert.Equal(float32, norm.weight!.dtype);
        Assert.Equal(float32, bn.running_mean!.dtype);
    }

    [Fact]
    public void ForwardsWithoutGradientsReuseTheCastWeightsUntilInvalidated()
    {
        torch.manual_seed(5);
        var linear = nn.Linear(8, 4);
        var x = torch.randn(3, 8);
        using var attachment = Autocast.Attach(linear);
        using var scope = Autocast.Enter(ScalarType.BFloat16);
        using (torch.no_grad())
        {
            var before = BFloat16Linear(linear, x);
            Assert.True(Same(linear.call(x), before));
            linear.weight!.add_(1.0); // an in-place change the cache cannot see…
            Assert.True(Same(linear.call(x), before), "without gradients the kept bfloat16 copy is reused");
            Autocast.InvalidateWeightCopies(); // …until it is told (the training loop does before each step)
            var after = BFloat16Linear(linear, x);
            Assert.False(Same(after, before));
            Assert.True(Same(linear.call(x), after));
            linear.weight.add_(1.0);
        }
        // With gradients on (training) every forward casts afresh, so the graph reaches the float32 weights.
        var trained = linear.call(x);
        Assert.True(Same(trained.detach(), BFloat16Linear(linear, x)));
        trained.sum().backward();
        Assert.Equal(float32, linear.weight!.grad!.dtype);
    }

    [Fact]
    public void DropoutKeepsABFloat16ActivationInBFloat16WithTheFloat32Masks()
    {
        // A bfloat16 activation (autocast keeps them between layers) must stay bfloat16 through SeededDropout, and the same
        // generator state must drop the same elements as for float32: the mask is drawn in float32 either way.
        var x = torch.rand(64, 32).add(0.5); // no zeros, so zeros in the output are exactly the dropped elements
        var float32Dropout = new MLExtensions.Core.SeededDropout(0.3, new Generator(11));
        var bfloat16Dropout = new MLExtensions.Core.SeededDropout(0.3, new Generator(11));
        float32Dropout.train();
        bfloat16Dropout.train();
        var y32 = float32Dropout.call(x);
        var y16 = bfloat16Dropout.call(x.to(bfloat16));
        Assert.Equal(float32, y32.dtype);
        Assert.Equal(bfloat16, y16.dtype);
        Assert.True(Same(y16.eq(0), y32.eq(0)), "the same elements must be dropped");
        // Kept elements are scaled by 1/(1−p) as in float32, within bfloat16 rounding (2^-8 relative, input and output each).
        Assert.True(y16.to(float32).allclose(y32, rtol: 1e-2, atol: 0), "kept elements must be scaled as in float32");
    }

    [Fact]
    public void GradientOfTheMixedForwardReachesFloat32WeightsWithinBFloat16Tolerance()
    {
        // Oracle: central differences of the float64 function, (f(w+h) − f(w−h)) / 2h, for a few weight entries; the
        // mixed forward's autograd gradient must match within bfloat16's relative precision (8-bit mantissa, ~0.4 %).
        torch.manual_seed(3);
        var linear = nn.Linear(16, 8);
        var conv = nn.Conv2d(2, 4, kernel_size: 3, padding: 1);
        var x = torch.randn(4, 16);
        var images = torch.randn(2, 2, 6, 6);
        var target = torch.randn(4, 8);
        using (Autocast.Attach(linear))
        using (Autocast.Attach(conv))
        using (Autocast.Enter(ScalarType.BFloat16))
        {
            var l = linear.call(x).sub(target).square().mean();
            var c = conv.call(images).tanh().sum();
            l.add(c.mul(0.01)).backward();
        }
        Assert.Equal(float32, linear.weight!.grad!.dtype);
        Assert.Equal(float32, conv.weight!.grad!.dtype);
        var analytic = torch.cat(new[] { linear.weight.grad.flatten(), conv.weight.grad.flatten() }).data<float>().ToArray();

        var w = linear.weight.detach().to(float64).clone();
        var k = conv.weight.detach().to(float64).clone();
        double F(Tensor wl, Tensor wc) =>
            nn.functional.linear(x.to(float64), wl, linear.bias!.detach().to(float64)).sub(target.to(float64)).square().mean()
                .add(nn.functional.conv2d(images.to(float64), wc, conv.bias!.detach().to(float64), padding: new long[] { 1, 1 }).tanh().sum().mul(0.01))
                .item<double>();
        const double h = 1e-4;
        int linearCount = (int)w.numel();
        var random = new Random(7);
        var largest = analytic.Max(v => Math.Abs(v));
        foreach (int i in Enumerable.Range(0, 12).Select(_ => random.Next(analytic.Length)))
        {
            bool inLinear = i < linearCount;
            var flat = inLinear ? w.view(-1) : k.view(-1);
            int j = inLinear ? i : i - linearCount;
            double original = flat[j].item<double>();
            flat[j] = original + h;
            double up = F(w, k);
            flat[j] = original - h;
            double down = F(w, k);
            flat[j] = original;
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(analytic[i] - numeric) <= 0.02 * Math.Abs(numeric) + 0.01 * largest,
                $"gradient entry {i}: mixed autograd {analytic[i]}, central difference {numeric}");
        }
    }

    [Theory]
    [InlineData(TrainingPrecision.Auto, null, TrainingPrecision.Float32)]
    [InlineData(TrainingPrecision.Auto, "avx512_bf16", TrainingPrecision.BFloat16)]
    [InlineData(TrainingPrecision.Auto, "amx_bf16", TrainingPrecision.BFloat16)]
    [InlineData(TrainingPrecision.BFloat16, null, TrainingPrecision.BFloat16)]
    [InlineData(TrainingPrecision.Float16, "avx512_bf16", TrainingPrecision.Float16)]
    [InlineData(TrainingPrecision.Float32, "avx512_bf16", TrainingPrecision.Float32)]
    public void AutoChoosesBFloat16OnlyWithNativeSupport(TrainingPrecision requested, string? feature, TrainingPrecision expected)
    {
        Assert.Equal(expected, PrecisionPolicy.Resolve(requested, feature, out string reason));
        if (requested == TrainingPrecision.Auto)
            Assert.Contains(feature ?? "no native bfloat16", reason);
    }

    [Fact]
    public void CpuDetectionAgreesWithTheKernelFlags()
    {
        // Independent reading of /proc/cpuinfo (Linux) as the oracle.
        bool expected = File.Exists("/proc/cpuinfo") && File.ReadLines("/proc/cpuinfo")
            .Where(l => l.StartsWith("flags")).Take(1)
            .Any(l => l.Split(' ').Any(f => f is "avx512_bf16" or "amx_bf16"));
        Assert.Equal(expected, CpuPrecisionSupport.HasNativeBFloat16);
    }
}
