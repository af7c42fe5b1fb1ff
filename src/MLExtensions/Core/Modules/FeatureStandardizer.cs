using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Fixed first layer that standardizes inputs: (x − mean) / std, with statistics learned from the training
/// data. The statistics are buffers, so they are saved with the weights and never trained.
/// </summary>
public sealed class FeatureStandardizer : nn.Module<Tensor, Tensor>
{
    private readonly Tensor mean;
    private readonly Tensor inv_std;

    /// <summary>Creates the layer for <paramref name="size"/> features (identity until <see cref="SetStatistics"/>).</summary>
    public FeatureStandardizer(long size) : base(nameof(FeatureStandardizer))
    {
        mean = torch.zeros(size);
        inv_std = torch.ones(size);
        register_buffer(nameof(mean), mean);
        register_buffer(nameof(inv_std), inv_std);
    }

    /// <summary>Sets the statistics. Constant features (std 0) are only centred.</summary>
    public void SetStatistics(ReadOnlySpan<float> means, ReadOnlySpan<float> stds)
    {
        using var noGrad = torch.no_grad();
        var inv = new float[stds.Length];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = stds[i] > 1e-12f ? 1f / stds[i] : 1f;
        using var m = torch.tensor(means.ToArray());
        using var s = torch.tensor(inv);
        mean.copy_(m);
        inv_std.copy_(s);
    }

    /// <summary>The means (for export).</summary>
    public Tensor Mean => mean;

    /// <summary>The reciprocal standard deviations (for export).</summary>
    public Tensor InverseStd => inv_std;

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => (input - mean) * inv_std;
}
