using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static MLExtensions.Vision.Convolutions;

namespace MLExtensions.Vision;

/// <summary>
/// The residual block of ResNet-18/34 and of the CIFAR ResNets (He et al. 2015): two 3×3 convolutions with
/// batch norm, added to the input (projected by a 1×1 convolution and batch norm when the shape changes), then ReLU.
/// State-dict keys follow torchvision: <c>conv1</c>, <c>bn1</c>, <c>conv2</c>, <c>bn2</c>, <c>downsample.0</c>, <c>downsample.1</c>.
/// </summary>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels per <c>channels</c> argument (1: the block outputs <c>channels</c>).</summary>
    public const int Expansion = 1;

    // Field names are torchvision's state-dict keys (TorchSharp registers fields by name), hence lower case.
#pragma warning disable IDE1006
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;

    // torchvision's one ReLU module, applied after the inner pairs and after the addition. A module rather than a
    // function call so that forward hooks reach it (DeepLIFT's rescale rule); it has no parameters, so no state-dict key.
    // Not in place: a hook must see the input it was called with.
    private readonly ReLU relu;
#pragma warning restore IDE1006

    /// <summary>Creates the block.</summary>
    /// <param name="inputs">Input channels.</param>
    /// <param name="channels">Output channels.</param>
    /// <param name="stride">Stride of the first convolution (2 halves the feature map).</param>
    public BasicBlock(long inputs, long channels, long stride) : base(nameof(BasicBlock))
    {
        conv1 = Conv3x3(inputs, channels, stride);
        bn1 = nn.BatchNorm2d(channels);
        conv2 = Conv3x3(channels, channels);
        bn2 = nn.BatchNorm2d(channels);
        if (stride != 1 || inputs != channels)
            downsample = nn.Sequential(Conv1x1(inputs, channels, stride), nn.BatchNorm2d(channels));
        relu = nn.ReLU();
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var identity = downsample is null ? input : downsample.call(input);
        var output = relu.call(bn1.call(conv1.call(input)));
        output = bn2.call(conv2.call(output));
        return relu.call(output.add_(identity)).MoveToOuterDisposeScope();
    }
}
