using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static MLExtensions.Vision.Convolutions;

namespace MLExtensions.Vision;

/// <summary>
/// The residual block of ResNet-50: 1×1 reduction, 3×3 convolution, 1×1 expansion to 4× the width, each with
/// batch norm, added to the (projected) input, then ReLU. The stride sits on the 3×3 convolution, as in
/// torchvision ("ResNet v1.5"). State-dict keys: <c>conv1..3</c>, <c>bn1..3</c>, <c>downsample.0</c>, <c>downsample.1</c>.
/// </summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    /// <summary>Output channels per <c>channels</c> argument: the block outputs 4 × <c>channels</c>.</summary>
    public const int Expansion = 4;

    // Field names are torchvision's state-dict keys (TorchSharp registers fields by name), hence lower case.
#pragma warning disable IDE1006
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly Sequential? downsample;

    // torchvision's one ReLU module, applied after the inner pairs and after the addition. A module rather than a
    // function call so that forward hooks reach it (DeepLIFT's rescale rule); it has no parameters, so no state-dict key.
    // Not in place: a hook must see the input it was called with.
    private readonly ReLU relu;
#pragma warning restore IDE1006

    /// <summary>Creates the block.</summary>
    /// <param name="inputs">Input channels.</param>
    /// <param name="channels">Width of the inner convolutions; the block outputs <see cref="Expansion"/> times as many.</param>
    /// <param name="stride">Stride of the 3×3 convolution (2 halves the feature map).</param>
    public Bottleneck(long inputs, long channels, long stride) : base(nameof(Bottleneck))
    {
        long outputs = channels * Expansion;
        conv1 = Conv1x1(inputs, channels);
        bn1 = nn.BatchNorm2d(channels);
        conv2 = Conv3x3(channels, channels, stride);
        bn2 = nn.BatchNorm2d(channels);
        conv3 = Conv1x1(channels, outputs);
        bn3 = nn.BatchNorm2d(outputs);
        if (stride != 1 || inputs != outputs)
            downsample = nn.Sequential(Conv1x1(inputs, outputs, stride), nn.BatchNorm2d(outputs));
        relu = nn.ReLU();
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var identity = downsample is null ? input : downsample.call(input);
        var output = relu.call(bn1.call(conv1.call(input)));
        output = relu.call(bn2.call(conv2.call(output)));
        output = bn3.call(conv3.call(output));
        return relu.call(output.add_(identity)).MoveToOuterDisposeScope();
    }
}
