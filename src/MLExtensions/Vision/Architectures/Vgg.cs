using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// VGG-11 (configuration "A") and VGG-16 (configuration "D") of Simonyan and Zisserman 2014: stacks of 3×3
/// convolutions with ReLU (optionally batch norm), five 2×2 max poolings, then two dense layers with dropout
/// and the head.
/// </summary>
/// <remarks>
/// <para>
/// With <see cref="ImageNetworkSettings.VggWidthMultiplier"/> 1 the layers, shapes and names are torchvision's
/// (<c>vgg11</c>, <c>vgg16</c>, or <c>vgg*_bn</c> with <see cref="ImageNetworkSettings.VggBatchNorm"/>):
/// <c>features.N.*</c> numbered through convolutions, batch norms, ReLUs and poolings, adaptive pooling to 7×7
/// for 224×224 input, <c>classifier.0</c>/<c>classifier.3</c> dense layers of 4096, head <c>classifier.6</c>.
/// ImageNet weights expect 224×224 RGB normalised with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
/// </para>
/// <para>
/// Five floor-mode poolings need at least 32 pixels; below that (e.g. 28×28) the poolings round up (ceil mode),
/// which has no weights and so leaves the names and shapes unchanged.
/// </para>
/// <para>Stages: the five convolutional blocks (each ending with its pooling), then the dense layers.</para>
/// </remarks>
public sealed class Vgg : SequentialImageNetwork
{
    private const long PoolCap = 7;
    private const int Pool = 0;

    // Channels per convolution, Pool marking a max pooling (Table 1 of the paper).
    private static readonly int[] ConfigurationA = { 64, Pool, 128, Pool, 256, 256, Pool, 512, 512, Pool, 512, 512, Pool };
    private static readonly int[] ConfigurationD = { 64, 64, Pool, 128, 128, Pool, 256, 256, 256, Pool, 512, 512, 512, Pool, 512, 512, 512, Pool };

    /// <summary>Builds the network with weights drawn from <paramref name="generator"/>.</summary>
    /// <param name="architecture"><see cref="ImageArchitecture.Vgg11"/> or <see cref="ImageArchitecture.Vgg16"/>.</param>
    /// <param name="inputChannels">Channels of the input images.</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="inputHeight">Height of the input images in pixels.</param>
    /// <param name="inputWidth">Width of the input images in pixels.</param>
    /// <param name="settings">Width multiplier, batch norm, dropout and pooling settings.</param>
    /// <param name="generator">Source of initial weights and dropout masks; null uses a generator seeded with 0.</param>
    public Vgg(ImageArchitecture architecture, int inputChannels, int classes, int inputHeight, int inputWidth, ImageNetworkSettings settings, Generator? generator)
        : base(architecture.ToString(), inputChannels, generator, g => Build(architecture, inputChannels, classes, inputHeight, inputWidth, settings, g))
    {
        Architecture = architecture;
    }

    /// <summary>Which VGG this is.</summary>
    public ImageArchitecture Architecture { get; }

    private static SequentialLayout Build(ImageArchitecture architecture, int inputChannels, int classes, int height, int width, ImageNetworkSettings settings, Generator generator)
    {
        var configuration = architecture switch
        {
            ImageArchitecture.Vgg11 => ConfigurationA,
            ImageArchitecture.Vgg16 => ConfigurationD,
            _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Not a VGG."),
        };
        double multiplier = settings.VggWidthMultiplier;
        long Scale(long channels) => Math.Max(1, (long)Math.Round(channels * multiplier));

        bool ceilMode = Math.Min(height, width) < 32;
        var map = new FeatureMapSize(architecture.ToString(), height, width);
        var layers = new List<nn.Module<Tensor, Tensor>>();
        long channels = inputChannels;
        foreach (int entry in configuration)
        {
            if (entry == Pool)
            {
                layers.Add(nn.MaxPool2d(kernel_size: 2, stride: 2, ceil_mode: ceilMode));
                map.Pool(kernel: 2, stride: 2, ceilMode: ceilMode);
                continue;
            }
            long outputs = Scale(entry);
            layers.Add(nn.Conv2d(channels, outputs, kernel_size: 3, padding: 1));
            if (settings.VggBatchNorm)
                layers.Add(nn.BatchNorm2d(outputs));
            layers.Add(nn.ReLU());
            channels = outputs;
        }
        var (pooledHeight, pooledWidth) = settings.PooledSize(map, PoolCap);
        long hidden = Scale(4096);
        var classifier = DenseClassifier.Build(channels * pooledHeight * pooledWidth, new[] { hidden, hidden }, classes,
            settings.Dropout ?? 0.5, DropoutPlacement.AfterActivation, generator);
        return new SequentialLayout(nn.Sequential(layers), pooledHeight, pooledWidth, classifier);
    }
}
