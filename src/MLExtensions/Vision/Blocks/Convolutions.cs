using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>The convolutions residual blocks are made of (no bias: each is followed by batch norm, which has its own).</summary>
internal static class Convolutions
{
    /// <summary>3×3 convolution with padding 1, so stride 1 keeps the size.</summary>
    public static Conv2d Conv3x3(long inputs, long outputs, long stride = 1) =>
        nn.Conv2d(inputs, outputs, kernel_size: 3, stride: stride, padding: 1, bias: false);

    /// <summary>1×1 convolution (channel projection).</summary>
    public static Conv2d Conv1x1(long inputs, long outputs, long stride = 1) =>
        nn.Conv2d(inputs, outputs, kernel_size: 1, stride: stride, bias: false);
}
