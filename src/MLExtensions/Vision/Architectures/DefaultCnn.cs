using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// A small CNN that trains in minutes on the CPU for 28×28 or 32×32 images: two blocks of two 3×3 convolutions
/// (32, then 64 channels) with batch norm and ReLU, each block ending in 2×2 max pooling, then dropout, a dense
/// layer of 128 with ReLU, dropout, and the head.
/// </summary>
/// <remarks>
/// The feature map is pooled adaptively to at most 8×8 (7×7 for 28×28 input, 8×8 for 32×32), so larger
/// images do not blow up the dense layer. Keys: <c>features.N.*</c>, <c>classifier.N.*</c>, head <c>classifier.4</c>.
/// Stages: the two convolutional blocks, then the dense layer.
/// </remarks>
public sealed class DefaultCnn : SequentialImageNetwork
{
    /// <summary>Dropout rate when <see cref="ImageNetworkSettings.Dropout"/> is null.</summary>
    public const double DefaultDropout = 0.25;

    private const long PoolCap = 8;
    private const long Hidden = 128;

    /// <summary>Builds the network with weights drawn from <paramref name="generator"/>.</summary>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="inputHeight">Height of the input images in pixels (at least 4).</param>
    /// <param name="inputWidth">Width of the input images in pixels (at least 4).</param>
    /// <param name="settings">Dropout and pooling settings.</param>
    /// <param name="generator">Source of initial weights and dropout masks; null uses a generator seeded with 0.</param>
    public DefaultCnn(int inputChannels, int classes, int inputHeight, int inputWidth, ImageNetworkSettings settings, Generator? generator)
        : base(nameof(DefaultCnn), inputChannels, generator, g => Build(inputChannels, classes, inputHeight, inputWidth, settings, g))
    {
    }

    private static SequentialLayout Build(int inputChannels, int classes, int height, int width, ImageNetworkSettings settings, Generator generator)
    {
        var map = new FeatureMapSize(nameof(DefaultCnn), height, width);
        var layers = new List<nn.Module<Tensor, Tensor>>();
        long channels = inputChannels;
        foreach (long blockWidth in new long[] { 32, 64 })
        {
            for (int i = 0; i < 2; i++)
            {
                // No bias: batch norm right after has its own.
                layers.Add(nn.Conv2d(channels, blockWidth, kernel_size: 3, padding: 1, bias: false));
                layers.Add(nn.BatchNorm2d(blockWidth));
                layers.Add(nn.ReLU());
                channels = blockWidth;
            }
            layers.Add(nn.MaxPool2d(kernel_size: 2, stride: 2));
            map.Pool(kernel: 2, stride: 2);
        }
        var (pooledHeight, pooledWidth) = settings.PooledSize(map, PoolCap);
        double dropout = settings.Dropout ?? DefaultDropout;
        var classifier = nn.Sequential(
            new SeededDropout(dropout, generator),
            nn.Linear(channels * pooledHeight * pooledWidth, Hidden),
            nn.ReLU(),
            new SeededDropout(dropout, generator),
            nn.Linear(Hidden, classes));
        return new SequentialLayout(nn.Sequential(layers), pooledHeight, pooledWidth, classifier);
    }
}
