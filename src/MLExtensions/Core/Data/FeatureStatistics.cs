using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Per-feature mean and standard deviation over one pass of a batch source.</summary>
public static class FeatureStatistics
{
    /// <summary>Computes the statistics of the first input tensor of every batch (in double precision).</summary>
    public static (float[] Means, float[] Stds) Compute(IBatchSource source, int size)
    {
        using var sum = torch.zeros(size, ScalarType.Float64);
        using var sumSquares = torch.zeros(size, ScalarType.Float64);
        long rows = 0;
        foreach (var batch in source.GetBatches(0, 4096, shuffle: false, seed: 0))
        {
            using (batch)
            using (var x = batch.Inputs[0].to(ScalarType.Float64))
            {
                using var s = x.sum(dim: 0L); // "sum(0)" would bind to sum(ScalarType) (0 converts to any enum)
                using var q = x.square().sum(dim: 0L);
                sum.add_(s);
                sumSquares.add_(q);
                rows += batch.Count;
            }
        }
        if (rows == 0)
            return (new float[size], Enumerable.Repeat(1f, size).ToArray());
        using var mean = sum / rows;
        using var variance = (sumSquares / rows - mean.square()).clamp_min(0);
        using var std = variance.sqrt();
        return (mean.to(ScalarType.Float32).data<float>().ToArray(), std.to(ScalarType.Float32).data<float>().ToArray());
    }
}
