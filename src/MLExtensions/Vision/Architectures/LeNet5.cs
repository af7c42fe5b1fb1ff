using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// LeNet-5 (LeCun et al. 1998, "Gradient-based learning applied to document recognition") with ReLU and max
/// pooling in place of the original scaled tanh and trainable subsampling: 5×5 convolutions with 6 and 16
/// channels, each followed by 2×2 max pooling, then dense layers of 120 and 84 and the head.
/// </summary>
/// <remarks>
/// The paper feeds 32×32 images (MNIST digits padded from 28×28). Here the first convolution pads by 2 when the
/// input is smaller than 32 pixels, so 28×28 and 32×32 inputs both reach the 16×5×5 map of the paper; other
/// sizes are pooled adaptively to at most 5×5. Dropout (default 0) follows each hidden dense layer.
/// Keys: <c>features.N.*</c>, <c>classifier.N.*</c>, head <c>classifier.6</c>. Stages: the two convolutional blocks, then the dense layers.
/// </remarks>
public sealed class LeNet5 : SequentialImageNetwork
{
    private const long PoolCap = 5;

    /// <summary>Builds the network with weights drawn from <paramref name="generator"/>.</summary>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="inputHeight">Height of the input images in pixels (at least 12).</param>
    /// <param name="inputWidth">Width of the input images in pixels (at least 12).</param>
    /// <param name="settings">Dropout and pooling settings.</param>
    /// <param name="generator">Source of initial weights and dropout masks; null uses a generator seeded with 0.</param>
    public LeNet5(int inputChannels, int classes, int inputHeight, int inputWidth, ImageNetworkSettings settings, Generator? generator)
        : base(nameof(LeNet5), inputChannels, generator, g => Build(inputChannels, classes, inputHeight, inputWidth, settings, g))
    {
    }

    private static SequentialLayout Build(int inputChannels, int classes, int height, int width, ImageNetworkSettings settings, Generator generator)
    {
        var map = new FeatureMapSize(nameof(LeNet5), height, width);
        long padding = Math.Min(height, width) < 32 ? 2 : 0;
        var features = nn.Sequential(
            nn.Conv2d(inputChannels, 6, kernel_size: 5, padding: padding),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size: 2, stride: 2),
            nn.Conv2d(6, 16, kernel_size: 5),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size: 2, stride: 2));
        map.Convolve(kernel: 5, padding: padding);
        map.Pool(kernel: 2, stride: 2);
        map.Convolve(kernel: 5);
        map.Pool(kernel: 2, stride: 2);
        var (pooledHeight, pooledWidth) = settings.PooledSize(map, PoolCap);
        var classifier = DenseClassifier.Build(16 * pooledHeight * pooledWidth, new long[] { 120, 84 }, classes,
            settings.Dropout ?? 0, DropoutPlacement.AfterActivation, generator);
        return new SequentialLayout(features, pooledHeight, pooledWidth, classifier);
    }
}
