using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Benchmarks.Data;

/// <summary>Turns loaded images into the tensors a hand-written TorchSharp loop trains on.</summary>
internal static class TensorConversion
{
    /// <summary>All images as one [count, pixels] float tensor (one contiguous copy).</summary>
    public static Tensor Features(LabeledImages images)
    {
        int pixels = images.Count == 0 ? FashionMnist.Pixels : images.Images[0].Length;
        var all = new float[(long)images.Count * pixels];
        for (int i = 0; i < images.Count; i++)
            images.Images[i].CopyTo(all, (long)i * pixels);
        return torch.tensor(all, new long[] { images.Count, pixels });
    }

    /// <summary>The labels as an int64 tensor of class indices, the target type of <c>cross_entropy</c>.</summary>
    public static Tensor Labels(LabeledImages images) => torch.tensor(images.Labels.Select(l => (long)l).ToArray());
}
