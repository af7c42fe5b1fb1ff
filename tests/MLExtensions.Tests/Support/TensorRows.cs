using TorchSharp;

namespace MLExtensions.Tests.Support;

/// <summary>Reads a [rows, columns] float tensor into one array per row, the shape the comparison helpers take.</summary>
public static class TensorRows
{
    public static float[][] Of(torch.Tensor matrix)
    {
        int k = (int)matrix.shape[1];
        var values = matrix.data<float>().ToArray();
        return Enumerable.Range(0, (int)matrix.shape[0]).Select(i => values.AsSpan(i * k, k).ToArray()).ToArray();
    }
}
