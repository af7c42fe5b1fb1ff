namespace MLExtensions.Vision;

/// <summary>
/// Follows the height and width of a feature map through convolution and pooling layers (PyTorch's output-size
/// rules), so a network can size its dense layers for its input and reject an input that would shrink to
/// nothing with a message instead of a libtorch error in the middle of a forward pass.
/// </summary>
internal sealed class FeatureMapSize
{
    private readonly string _network;
    private readonly int _inputHeight;
    private readonly int _inputWidth;
    private int _layer;

    /// <summary>Starts at the input size.</summary>
    /// <param name="network">Name used in error messages.</param>
    /// <param name="height">Input height in pixels.</param>
    /// <param name="width">Input width in pixels.</param>
    public FeatureMapSize(string network, int height, int width)
    {
        _network = network;
        _inputHeight = height;
        _inputWidth = width;
        Height = height;
        Width = width;
    }

    /// <summary>Current height.</summary>
    public long Height { get; private set; }

    /// <summary>Current width.</summary>
    public long Width { get; private set; }

    /// <summary>Applies a square convolution.</summary>
    public void Convolve(long kernel, long stride = 1, long padding = 0) =>
        Apply("convolution", size => FloorDiv(size + 2 * padding - kernel, stride) + 1);

    /// <summary>Applies a square max or average pooling.</summary>
    public void Pool(long kernel, long stride, long padding = 0, bool ceilMode = false) =>
        Apply("pooling", size =>
        {
            long output = FloorDiv(size + 2 * padding - kernel + (ceilMode ? stride - 1 : 0), stride) + 1;
            // In ceil mode the last window must still start inside the (left-padded) input.
            if (ceilMode && (output - 1) * stride >= size + padding)
                output--;
            return output;
        });

    private void Apply(string layer, Func<long, long> rule)
    {
        _layer++;
        Height = rule(Height);
        Width = rule(Width);
        if (Height < 1 || Width < 1)
            throw new ArgumentOutOfRangeException("inputHeight, inputWidth", $"{_inputHeight}×{_inputWidth}",
                $"An input of {_inputHeight}×{_inputWidth} pixels is too small for {_network}: its feature map has no pixels left after layer {_layer} ({layer}). Use larger images or a smaller architecture.");
    }

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);
}
