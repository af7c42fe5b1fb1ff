using MLExtensions.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>Comparisons between float and quantized model outputs.</summary>
internal static class RealModelMetrics
{
    public static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>
    /// For each item, its nearest other item by cosine; the fraction of items whose nearest neighbour is the same under
    /// both sets of vectors. This is top-1 agreement for retrieval, which is what sentence embeddings are used for.
    /// </summary>
    public static double NearestNeighbourAgreement(IReadOnlyList<float[]> reference, IReadOnlyList<float[]> candidate)
    {
        int Nearest(IReadOnlyList<float[]> set, int i) =>
            Enumerable.Range(0, set.Count).Where(j => j != i).MaxBy(j => Cosine(set[i], set[j]));
        int same = Enumerable.Range(0, reference.Count).Count(i => Nearest(reference, i) == Nearest(candidate, i));
        return (double)same / reference.Count;
    }

    /// <summary>
    /// Logs and checks how closely a quantized model's output vectors follow the float model's on the same items: the
    /// per-item cosine (minimum and mean floors) and the nearest-neighbour agreement; also that two different items give
    /// clearly different float vectors (below <paramref name="distinctCosine"/>), so the comparison cannot pass trivially.
    /// </summary>
    public static void AssertFollows(IReadOnlyList<float[]> reference, IReadOnlyList<float[]> quantized, QuantizationReport report, ITestOutputHelper output,
        string label, double minCosine, double meanCosine, double minAgreement, double distinctCosine)
    {
        var cosines = reference.Zip(quantized, Cosine).ToList();
        double agreement = NearestNeighbourAgreement(reference, quantized);
        output.WriteLine($"{label}: cosine min {cosines.Min():F5}, mean {cosines.Average():F5}; nearest-neighbour agreement {agreement:P0}");
        output.WriteLine(report.ToString());
        Assert.True(cosines.Min() >= minCosine, $"min cosine {cosines.Min():F5} < {minCosine}");
        Assert.True(cosines.Average() >= meanCosine, $"mean cosine {cosines.Average():F5} < {meanCosine}");
        Assert.True(agreement >= minAgreement, $"nearest-neighbour agreement {agreement:P0} < {minAgreement:P0}");
        Assert.True(Cosine(reference[0], reference[1]) < distinctCosine, "two different items should not give near-identical vectors");
    }
}
