using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Explainability;

/// <summary>
/// The gradient methods, on any differentiable function from a batch of points [B, …] to one output per point [B].
/// Points live in the explained space: raw feature vectors or pixels for networks that read floats, word embeddings for
/// text. Every method sends its points through the function in large batches (integrated gradients: all steps of a row at once).
/// </summary>
internal static class GradientAttribution
{
    /// <summary>Largest number of points sent through the network at once by the sampling methods.</summary>
    private const int SampleBatch = 50;

    /// <summary>The gradient of the sum of <paramref name="f"/> over the batch, i.e. each point's own gradient.</summary>
    public static Tensor Gradient(Func<Tensor, Tensor> f, Tensor points)
    {
        using var grad = torch.enable_grad();
        using var scope = torch.NewDisposeScope();
        var input = points.detach().requires_grad_(true);
        var output = f(input).sum();
        // autograd.grad, not backward: only the input's gradient is computed, and nothing accumulates in the shared
        // parameters' .grad, so several cursors can explain at once.
        var gradient = torch.autograd.grad(new[] { output }, new[] { input })[0];
        return gradient.detach().MoveToOuterDisposeScope();
    }

    /// <summary>(x − b) · Σ wᵢ ∇f(b + αᵢ(x − b)) with Gauss–Legendre nodes αᵢ; x and b are [1, …].</summary>
    public static Tensor IntegratedGradients(Func<Tensor, Tensor> f, Tensor x, Tensor baseline, int steps)
    {
        using var scope = torch.NewDisposeScope();
        var (nodes, weights) = GaussLegendre.Unit(steps);
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[0] = steps;
        var alphas = torch.tensor(nodes.Select(a => (float)a).ToArray()).view(shape);
        var w = torch.tensor(weights.Select(v => (float)v).ToArray()).view(shape);
        var difference = x - baseline;
        var points = baseline + alphas * difference;
        var gradients = Gradient(f, points);
        var average = (gradients * w).sum(0, keepdim: true);
        return (difference * average).MoveToOuterDisposeScope();
    }

    /// <summary>|∇f(x)| (captum's Saliency with abs = true).</summary>
    public static Tensor Saliency(Func<Tensor, Tensor> f, Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return Gradient(f, x).abs().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Expected gradients (shap's GradientExplainer): per sample a random reference r and t ~ U(0, 1); the gradient at
    /// t·(x + noise) + (1 − t)·r times (x − r), averaged over the samples.
    /// </summary>
    public static Tensor GradientShap(Func<Tensor, Tensor> f, Tensor x, Tensor references, int samples, double noise, Random random)
    {
        using var scope = torch.NewDisposeScope();
        var total = torch.zeros_like(x);
        long count = references.shape[0];
        for (int start = 0; start < samples; start += SampleBatch)
        {
            using var inner = torch.NewDisposeScope();
            int n = Math.Min(SampleBatch, samples - start);
            var chosen = torch.tensor(Enumerable.Range(0, n).Select(_ => (long)random.Next((int)count)).ToArray());
            var shape = new long[x.dim()];
            Array.Fill(shape, 1L);
            shape[0] = n;
            var t = torch.tensor(Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray()).view(shape);
            var r = references.index_select(0, chosen);
            var smoothed = x.expand(r.shape) + Noise(r.shape, noise, random);
            var points = t * smoothed + (1 - t) * r;
            var gradients = Gradient(f, points);
            total.add_((gradients * (x - r)).sum(0, keepdim: true));
        }
        return (total / samples).MoveToOuterDisposeScope();
    }

    /// <summary>Gaussian noise of the given shape and standard deviation, drawn from <paramref name="random"/> (zeros when 0).</summary>
    public static Tensor Noise(long[] shape, double standardDeviation, Random random)
    {
        long size = shape.Aggregate(1L, (a, b) => a * b);
        if (standardDeviation == 0)
            return torch.zeros(shape);
        var values = new float[size];
        for (long i = 0; i < size; i++)
        {
            // Box–Muller from the seeded generator, so explanations repeat with the same seed.
            double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
            values[i] = (float)(standardDeviation * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return torch.tensor(values, shape);
    }
}
