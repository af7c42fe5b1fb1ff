using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Core;

/// <summary>Autograd of the library's own layers against central differences, (f(x+h) − f(x−h)) / 2h, in float64.</summary>
public class GradientCheckTests
{
    public GradientCheckTests() => TorchNativeLoader.EnsureLoaded();

    [Fact]
    public void FeatureStandardizer() =>
        CheckInputGradient(() =>
        {
            var layer = new FeatureStandardizer(4);
            layer.SetStatistics(new[] { 0.5f, -1f, 2f, 0f }, new[] { 2f, 0.5f, 1f, 0f });
            layer.to(float64);
            return x => layer.call(x).square().sum();
        }, 4);

    [Fact]
    public void SeededDropoutWithAFixedMask()
    {
        var generator = new Generator(3, CPU);
        var state = generator.get_state();
        var layer = new SeededDropout(0.4, generator);
        layer.train();
        // Resetting the generator before every evaluation gives the same mask each time, so f is deterministic.
        CheckInputGradient(() => x =>
        {
            generator.set_state(state);
            return (layer.call(x) * torch.arange(1, 7, float64)).sum();
        }, 6);
    }

    [Fact]
    public void MultiLayerPerceptronWithEveryActivation()
    {
        foreach (var activation in Enum.GetValues<Activation>())
        {
            var options = new NeuralNetworkOptions { HiddenLayers = new[] { 5, 4 }, Activation = activation, Dropout = 0, LeakyReLUSlope = 0.2 };
            var network = new MultiLayerPerceptron(3, 2, options, null);
            network.to(float64);
            network.eval();
            CheckInputGradient(() => x => network.call(x).pow(2).sum(), 3, activation.ToString());
        }
    }

    private static void CheckInputGradient(Func<Func<Tensor, Tensor>> build, int size, string what = "")
    {
        var f = build();
        var random = new Random(5);
        var x0 = Enumerable.Range(0, size).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        using var x = torch.tensor(x0, new long[] { 1, size }, float64, requires_grad: true);
        using var y = f(x);
        var analytic = torch.autograd.grad(new[] { y }, new[] { x })[0].data<double>().ToArray();

        const double h = 1e-6;
        for (int i = 0; i < size; i++)
        {
            double Eval(double delta)
            {
                var shifted = (double[])x0.Clone();
                shifted[i] += delta;
                using var noGrad = torch.no_grad();
                using var input = torch.tensor(shifted, new long[] { 1, size }, float64);
                using var output = f(input);
                return output.item<double>();
            }
            double numeric = (Eval(h) - Eval(-h)) / (2 * h);
            Assert.True(Math.Abs(numeric - analytic[i]) < 1e-6 * Math.Max(1, Math.Abs(numeric)),
                $"{what} d/dx[{i}]: autograd {analytic[i]}, central difference {numeric}");
        }
    }
}
