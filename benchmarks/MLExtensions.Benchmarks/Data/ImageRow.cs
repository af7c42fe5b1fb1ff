using Microsoft.ML.Data;

namespace MLExtensions.Benchmarks.Data;

/// <summary>An image as ML.NET sees it: the 784 pixels and the class (map it to a key inside the pipeline).</summary>
internal sealed class ImageRow
{
    /// <summary>The pixels in [0, 1], row-major.</summary>
    [VectorType(FashionMnist.Pixels)]
    public float[] Features { get; set; } = Array.Empty<float>();

    /// <summary>The class 0..9.</summary>
    public uint Label { get; set; }

    /// <summary>Wraps the loaded arrays without copying them; ML.NET reads them lazily through a cursor.</summary>
    public static IEnumerable<ImageRow> From(LabeledImages images)
    {
        for (int i = 0; i < images.Count; i++)
            yield return new ImageRow { Features = images.Images[i], Label = images.Labels[i] };
    }
}
