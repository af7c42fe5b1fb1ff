using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// Applies <see cref="ImageAugmentationOptions"/> to a batch of raw images [N, C, H, W] with the run's generator:
/// random crop after zero padding, horizontal flip, and a random affine (translation, rotation) with zero fill.
/// Every image in the batch gets its own random draw.
/// </summary>
public sealed class ImageAugmenter
{
    private readonly ImageAugmentationOptions _options;
    private readonly Generator _generator;

    /// <summary>Creates the augmenter.</summary>
    public ImageAugmenter(ImageAugmentationOptions options, Generator generator)
    {
        _options = options;
        _generator = generator;
    }

    /// <summary>Returns an augmented copy of <paramref name="images"/> ([N, C, H, W]).</summary>
    public Tensor Apply(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var x = images;
        long n = x.shape[0];
        if (_options.RandomCropPadding > 0)
            x = RandomCrop(x, _options.RandomCropPadding);
        if (_options.HorizontalFlip)
        {
            var flip = torch.rand(new long[] { n, 1, 1, 1 }, generator: _generator).lt(0.5);
            x = torch.where(flip, x.flip(3), x);
        }
        if (_options.MaxTranslation > 0 || _options.MaxRotationDegrees > 0)
            x = RandomAffine(x);
        return x.MoveToOuterDisposeScope();
    }

    private Tensor RandomCrop(Tensor x, int padding)
    {
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var padded = nn.functional.pad(x, new long[] { padding, padding, padding, padding }, PaddingModes.Zeros, 0);
        var offsets = torch.randint(0, 2 * padding + 1, new long[] { n, 2 }, generator: _generator).data<long>().ToArray();
        var crops = new Tensor[n];
        for (long i = 0; i < n; i++)
            crops[i] = padded[i].narrow(1, offsets[2 * i], h).narrow(2, offsets[2 * i + 1], w);
        return torch.stack(crops);
    }

    private Tensor RandomAffine(Tensor x)
    {
        long n = x.shape[0];
        // θ maps output to input coordinates in [-1, 1]: rotation by a and translation by (tx, ty) (a shift of
        // 2·fraction in normalized coordinates is a shift of `fraction` of the image).
        var u = torch.rand(new long[] { n, 3 }, generator: _generator) * 2 - 1;
        var angle = u[.., 0] * (_options.MaxRotationDegrees * Math.PI / 180);
        var tx = u[.., 1] * (2 * _options.MaxTranslation);
        var ty = u[.., 2] * (2 * _options.MaxTranslation);
        var cos = angle.cos();
        var sin = angle.sin();
        var theta = torch.stack(new[] { cos, -sin, tx, sin, cos, ty }, 1).reshape(n, 2, 3).to(x.dtype);
        var grid = nn.functional.affine_grid(theta, x.shape, false);
        return nn.functional.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, false);
    }
}
