using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// The locked image tower of the LiT encoder: ML.NET's ImageNet ResNet-18 (the CNTK model of the
/// <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package, read by <see cref="ResNet18OnnxWeights"/>) with its
/// preprocessing (gray → RGB, bilinear resize, BGR, mean subtraction), frozen and in evaluation mode.
/// </summary>
internal static class LockedImageTower
{
    /// <summary>Builds the tower for images of <paramref name="image"/>'s shape; with <paramref name="pretrained"/> the ImageNet weights are loaded.</summary>
    public static ImageClassifierNetwork Create(ImageInput image, int inputSize, bool pretrained, string? weightsPath)
    {
        var settings = new ImageNetworkSettings { ResNetBlocksPerStage = ResNet18OnnxWeights.BlocksPerStage.ToArray(), SmallInputStem = false };
        using var generator = new Generator(0, CPU);
        // Two classes: the head is never used (features only), but every architecture has one.
        var net = ImageNetworks.Create(ImageArchitecture.ResNet18, 3, 2, inputSize, inputSize, settings, generator);
        var preprocess = new ImagePreprocessor(image.Channels, image.Height, image.Width, 3, inputSize);
        var tower = new ImageClassifierNetwork(preprocess, net);
        if (pretrained)
        {
            string path = ResNet18OnnxWeights.Locate(weightsPath);
            var stateDict = ResNet18OnnxWeights.LoadStateDict(path);
            try
            {
                TorchvisionWeights.Load(net, stateDict, path, skipHead: true);
            }
            finally
            {
                foreach (var t in stateDict.Values)
                    t.Dispose();
            }
            ResNet18OnnxWeights.ConfigurePreprocessor(preprocess, 1f / 255); // MLImage, bytes and ExtractPixels floats are 0–255
        }
        foreach (var parameter in tower.parameters())
            parameter.requires_grad = false;
        tower.eval();
        return tower;
    }

    /// <summary>Features [N, 512] of raw images [N, C·H·W], in batches, without gradients.</summary>
    public static Tensor Features(ImageClassifierNetwork tower, Tensor raw, int batchSize = 64)
    {
        using var noGrad = torch.no_grad();
        var parts = new List<Tensor>();
        for (long start = 0; start < raw.shape[0]; start += batchSize)
        {
            using var slice = raw.narrow(0, start, Math.Min(batchSize, raw.shape[0] - start));
            parts.Add(tower.ExtractFeatures(slice));
        }
        var result = torch.cat(parts, 0);
        foreach (var part in parts)
            part.Dispose();
        return result;
    }
}

/// <summary>The saved weights of a fitted LiT encoder: the locked tower (with its preprocessing buffers) and the trained projection.</summary>
internal sealed class LitNetwork : nn.Module
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly ImageClassifierNetwork image_tower;
    private readonly ContrastiveProjection projection;
#pragma warning restore IDE1006

    public LitNetwork(ImageClassifierNetwork imageTower, ContrastiveProjection projection) : base(nameof(LitNetwork))
    {
        image_tower = imageTower;
        this.projection = projection;
        RegisterComponents();
    }

    public ImageClassifierNetwork ImageTower => image_tower;

    public ContrastiveProjection Projection => projection;
}
