using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// An AlexNet-style network (Krizhevsky et al. 2012), in the single-tower form torchvision uses: five
/// convolutions (64, 192, 384, 256, 256 channels) with ReLU and three max poolings, then dropout → dense →
/// ReLU twice, and the head.
/// </summary>
/// <remarks>
/// <para>
/// For ImageNet-sized input the layers and names are torchvision's (<c>features.0</c> is the 11×11 stride-4
/// convolution, 3×3 stride-2 pooling, adaptive pooling to 6×6, dense layers of 4096, head <c>classifier.6</c>).
/// </para>
/// <para>
/// Scaled for small images (<see cref="ImageNetworkSettings.SmallInputStem"/>, by default below 64 pixels):
/// the first convolution is 3×3 with stride 1, poolings are 2×2 with stride 2 and the dense layers 1024 wide;
/// all other layers and the numbering are unchanged. 32×32 input then reaches a 4×4 map instead of vanishing.
/// </para>
/// <para>Stages: the three convolutional blocks (each ending with its pooling), then the dense layers.</para>
/// </remarks>
public sealed class AlexNet : SequentialImageNetwork
{
    private const long PoolCap = 6;

    /// <summary>Builds the network with weights drawn from <paramref name="generator"/>.</summary>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="inputHeight">Height of the input images in pixels (at least 8 with the small stem, 63 with the ImageNet one).</param>
    /// <param name="inputWidth">Width of the input images in pixels (same minimum).</param>
    /// <param name="settings">Dropout, stem and pooling settings.</param>
    /// <param name="generator">Source of initial weights and dropout masks; null uses a generator seeded with 0.</param>
    public AlexNet(int inputChannels, int classes, int inputHeight, int inputWidth, ImageNetworkSettings settings, Generator? generator)
        : base(nameof(AlexNet), inputChannels, generator, g => Build(inputChannels, classes, inputHeight, inputWidth, settings, g))
    {
    }

    private static SequentialLayout Build(int inputChannels, int classes, int height, int width, ImageNetworkSettings settings, Generator generator)
    {
        bool small = settings.UsesSmallStem(height, width);
        var (kernel, stride, padding) = small ? (3L, 1L, 1L) : (11L, 4L, 2L);
        var (poolKernel, poolStride) = small ? (2L, 2L) : (3L, 2L);
        var map = new FeatureMapSize(nameof(AlexNet), height, width);

        nn.Module<Tensor, Tensor> Pool()
        {
            map.Pool(poolKernel, poolStride);
            return nn.MaxPool2d(kernel_size: poolKernel, stride: poolStride);
        }

        nn.Module<Tensor, Tensor> Conv(long inputs, long outputs, long k, long s, long p)
        {
            map.Convolve(k, s, p);
            return nn.Conv2d(inputs, outputs, kernel_size: k, stride: s, padding: p);
        }

        var features = nn.Sequential(
            Conv(inputChannels, 64, kernel, stride, padding), nn.ReLU(), Pool(),
            Conv(64, 192, 5, 1, 2), nn.ReLU(), Pool(),
            Conv(192, 384, 3, 1, 1), nn.ReLU(),
            Conv(384, 256, 3, 1, 1), nn.ReLU(),
            Conv(256, 256, 3, 1, 1), nn.ReLU(), Pool());
        var (pooledHeight, pooledWidth) = settings.PooledSize(map, PoolCap);
        long hidden = small ? 1024 : 4096;
        var classifier = DenseClassifier.Build(256 * pooledHeight * pooledWidth, new[] { hidden, hidden }, classes,
            settings.Dropout ?? 0.5, DropoutPlacement.BeforeLinear, generator);
        return new SequentialLayout(features, pooledHeight, pooledWidth, classifier);
    }
}
