using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Distillation;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Distillation;

public class DistillationLossTests
{
    public DistillationLossTests() => TorchNativeLoader.EnsureLoaded();

    private static double[] Softmax(double[] z, double t)
    {
        var e = z.Select(v => Math.Exp(v / t)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    /// <summary>The loss written out with doubles, independently of TorchSharp.</summary>
    private static double ByHand(double[][] student, double[][] teacher, long[] labels, double t, double alpha)
    {
        double soft = 0, hard = 0;
        int labeled = 0;
        for (int n = 0; n < student.Length; n++)
        {
            var p = Softmax(teacher[n], t);
            var q = Softmax(student[n], t);
            soft += p.Select((pi, i) => pi * (Math.Log(pi) - Math.Log(q[i]))).Sum();
            if (labels[n] >= 0)
            {
                hard -= Math.Log(Softmax(student[n], 1)[labels[n]]);
                labeled++;
            }
        }
        return alpha * t * t * soft / student.Length + (1 - alpha) * (labeled == 0 ? 0 : hard / labeled);
    }

    private static Tensor T(double[][] rows) => torch.tensor(rows.SelectMany(r => r).Select(v => (float)v).ToArray(), new long[] { rows.Length, rows[0].Length });

    [Fact]
    public void MatchesTheHandComputedValueOnFixedLogits()
    {
        var student = new[] { new[] { 1.0, 2.0, 0.5 }, new[] { -1.0, 0.0, 3.0 } };
        var teacher = new[] { new[] { 2.0, 0.0, 1.0 }, new[] { 0.5, 0.5, 2.0 } };
        var labels = new long[] { 0, 2 };
        var loss = new DistillationLoss(PredictionTask.MulticlassClassification, temperature: 2, alpha: 0.3);

        using var value = loss.Compute(T(student), T(teacher), torch.tensor(labels));

        double expected = ByHand(student, teacher, labels, 2, 0.3);
        Assert.Equal(expected, value.item<float>(), 5);
        // The same number from a separate script: KL terms 0.195283 and 0.127022, CE terms 1.464369 and 0.065884,
        // 0.3 · 2² · mean(KL) + 0.7 · mean(CE) = 0.728971.
        Assert.Equal(0.728971, value.item<float>(), 5);
    }

    [Fact]
    public void UnlabeledRowsContributeOnlyThroughTheSoftTerm()
    {
        var student = new[] { new[] { 1.0, 2.0, 0.5 }, new[] { -1.0, 0.0, 3.0 }, new[] { 0.2, 0.1, 0.0 } };
        var teacher = new[] { new[] { 2.0, 0.0, 1.0 }, new[] { 0.5, 0.5, 2.0 }, new[] { 3.0, -1.0, 0.0 } };
        var labels = new long[] { 0, MissingTarget.ClassIndex, MissingTarget.ClassIndex };
        var loss = new DistillationLoss(PredictionTask.MulticlassClassification, 3, 0.6);

        using var value = loss.Compute(T(student), T(teacher), torch.tensor(labels));
        Assert.Equal(ByHand(student, teacher, labels, 3, 0.6), value.item<float>(), 5);

        var none = Enumerable.Repeat(MissingTarget.ClassIndex, 3).ToArray();
        using var softOnly = loss.Compute(T(student), T(teacher), torch.tensor(none));
        using var soft = loss.SoftTerm(T(student), T(teacher));
        Assert.Equal(0.6 * soft.item<float>(), softOnly.item<float>(), 6);
    }

    [Fact]
    public void TemperatureSquaredKeepsSoftGradientsOnTheSameScale()
    {
        // For large T, d(T²·KL)/dz_i → (z_i − v_i)/K per row for zero-mean logits (Hinton et al. 2015): independent of T.
        var z = new[] { 0.6, -0.2, -0.4 };
        var v = new[] { -0.3, 0.5, -0.2 };
        double[] Gradient(double t)
        {
            var loss = new DistillationLoss(PredictionTask.MulticlassClassification, t, 1);
            using var student = T(new[] { z }).requires_grad_();
            using var value = loss.Compute(student, T(new[] { v }), torch.tensor(new long[] { 0 }));
            value.backward();
            return student.grad!.data<float>().Select(g => (double)g).ToArray();
        }
        var expected = z.Select((zi, i) => (zi - v[i]) / 3).ToArray();
        foreach (double t in new[] { 20.0, 50.0 })
        {
            var g = Gradient(t);
            for (int i = 0; i < 3; i++)
                Assert.True(Math.Abs(expected[i] - g[i]) < 0.1 / t, $"T = {t}, slot {i}: gradient {g[i]}, expected ≈ {expected[i]}"); // the approximation error shrinks like 1/T
        }
        // Without T² the gradient would shrink 6.25-fold from T = 20 to T = 50; with it the two agree closely.
        var g20 = Gradient(20);
        var g50 = Gradient(50);
        Assert.True(Math.Abs(g20[0] / g50[0] - 1) < 0.02, $"{g20[0]} vs {g50[0]}");
    }

    [Fact]
    public void GradientMatchesCentralDifferences()
    {
        var student = new[] { new[] { 1.0, 2.0, 0.5 }, new[] { -1.0, 0.0, 3.0 } };
        var teacher = new[] { new[] { 2.0, 0.0, 1.0 }, new[] { 0.5, 0.5, 2.0 } };
        var labels = new long[] { 1, MissingTarget.ClassIndex };
        var loss = new DistillationLoss(PredictionTask.MulticlassClassification, 1.5, 0.4);
        using var x = T(student).to(ScalarType.Float64).requires_grad_();
        using var value = loss.Compute(x, T(teacher).to(ScalarType.Float64), torch.tensor(labels));
        value.backward();
        var analytic = x.grad!.data<double>().ToArray();
        const double h = 1e-5;
        for (int i = 0; i < 6; i++)
        {
            double Eval(double delta)
            {
                var copy = student.Select(r => r.ToArray()).ToArray();
                copy[i / 3][i % 3] += delta;
                return ByHand(copy, teacher, labels, 1.5, 0.4);
            }
            double numeric = (Eval(h) - Eval(-h)) / (2 * h);
            Assert.Equal(numeric, analytic[i], 6);
        }
    }

    [Fact]
    public void BinaryLossIsTheTwoClassLossOnZeroAndTheLogit()
    {
        var binary = new DistillationLoss(PredictionTask.BinaryClassification, 2, 0.7);
        var multi = new DistillationLoss(PredictionTask.MulticlassClassification, 2, 0.7);
        var z = new[] { 1.5f, -0.5f, 0.3f };
        var v = new[] { 2.0f, 1.0f, -3.0f };
        using var b = binary.Compute(torch.tensor(z), torch.tensor(v), torch.tensor(new[] { 1f, 0f, float.NaN }));
        using var m = multi.Compute(
            torch.tensor(z.SelectMany(x => new[] { 0f, x }).ToArray(), new long[] { 3, 2 }),
            torch.tensor(v.SelectMany(x => new[] { 0f, x }).ToArray(), new long[] { 3, 2 }),
            torch.tensor(new long[] { 1, 0, MissingTarget.ClassIndex }));
        Assert.Equal(m.item<float>(), b.item<float>(), 5);
    }

    [Fact]
    public void RejectsInvalidSettings()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationLoss(PredictionTask.MulticlassClassification, 0, 0.5));
        Assert.Contains("temperature must be a finite number > 0; found 0", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationLoss(PredictionTask.MulticlassClassification, 1, 1.2));
        Assert.Contains("alpha must be in [0, 1]; found 1.2", e.Message);
    }
}
