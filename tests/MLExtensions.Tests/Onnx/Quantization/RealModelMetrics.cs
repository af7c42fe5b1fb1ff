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
}
