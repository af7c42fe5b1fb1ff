using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>Creates the image networks of <see cref="ImageArchitecture"/>.</summary>
public static class ImageNetworks
{
    /// <summary>
    /// Builds a network for images of the given size, with weights drawn from <paramref name="generator"/>
    /// (linear and convolution layers as PyTorch's defaults, batch norm weight 1 and bias 0).
    /// </summary>
    /// <param name="architecture">Which network.</param>
    /// <param name="inputChannels">Channels of the input images (1 for grayscale, 3 for RGB).</param>
    /// <param name="classes">Outputs of the head.</param>
    /// <param name="inputHeight">Height of the input images in pixels. Sizes the dense layers and chooses the stem.</param>
    /// <param name="inputWidth">Width of the input images in pixels.</param>
    /// <param name="settings">Architecture settings; each architecture reads only those that apply to it.</param>
    /// <param name="generator">
    /// Source of the initial weights and, during training, of the dropout masks. Null uses a generator seeded
    /// with 0, so the network is still reproducible.
    /// </param>
    /// <returns>The network, in training mode. Input [N, <paramref name="inputChannels"/>, H, W]; output logits [N, <paramref name="classes"/>].</returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument or setting is out of range, or the input is too small for the architecture.</exception>
    public static ImageNetwork Create(ImageArchitecture architecture, int inputChannels, int classes, int inputHeight, int inputWidth,
        ImageNetworkSettings settings, Generator? generator)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (inputChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(inputChannels), inputChannels, "Images need at least one channel.");
        if (classes < 1)
            throw new ArgumentOutOfRangeException(nameof(classes), classes, "The head needs at least one output.");
        if (inputHeight < 1)
            throw new ArgumentOutOfRangeException(nameof(inputHeight), inputHeight, "The input height must be at least 1 pixel.");
        if (inputWidth < 1)
            throw new ArgumentOutOfRangeException(nameof(inputWidth), inputWidth, "The input width must be at least 1 pixel.");
        settings.Validate();
        TorchNativeLoader.EnsureLoaded();

        return architecture switch
        {
            ImageArchitecture.DefaultCnn => new DefaultCnn(inputChannels, classes, inputHeight, inputWidth, settings, generator),
            ImageArchitecture.LeNet5 => new LeNet5(inputChannels, classes, inputHeight, inputWidth, settings, generator),
            ImageArchitecture.AlexNet => new AlexNet(inputChannels, classes, inputHeight, inputWidth, settings, generator),
            ImageArchitecture.Vgg11 or ImageArchitecture.Vgg16 =>
                new Vgg(architecture, inputChannels, classes, inputHeight, inputWidth, settings, generator),
            ImageArchitecture.ResNet18 or ImageArchitecture.ResNet34 or ImageArchitecture.ResNet50 or ImageArchitecture.ResNet20 =>
                new ResNet(architecture, inputChannels, classes, settings.UsesSmallStem(inputHeight, inputWidth), generator, settings.ResNetBlocksPerStage),
            _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Unknown image architecture."),
        };
    }
}
