using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Dynamic loss scaling (PyTorch <c>GradScaler</c> semantics, see <see cref="LossScalingOptions"/>). The loop scales the
/// loss before backward and calls <see cref="UnscaleAndDecide"/> before clipping and stepping.
/// </summary>
internal sealed class LossScaler
{
    private readonly LossScalingOptions _options;

    public LossScaler(LossScalingOptions options)
    {
        _options = options;
        Scale = options.InitialScale;
    }

    /// <summary>The current scale.</summary>
    public double Scale { get; private set; }

    /// <summary>Consecutive finite steps since the scale last changed.</summary>
    public int GrowthTracker { get; private set; }

    /// <summary>Restores a checkpointed state.</summary>
    public void Restore(double scale, int growthTracker)
    {
        Scale = scale;
        GrowthTracker = growthTracker;
    }

    /// <summary>The loss to call backward on.</summary>
    public Tensor ScaleLoss(Tensor loss)
    {
        // An explicit, disposed Scalar: implicit double→Scalar conversions race with the GC (see RootedScalars).
        using var scale = Scale.ToScalar();
        return loss.mul(scale);
    }

    /// <summary>
    /// Divides the gradients by the scale and updates the scale. Returns false (skip this optimizer step) when a
    /// gradient holds an infinity or NaN.
    /// </summary>
    public bool UnscaleAndDecide(IEnumerable<Tensor> parameters)
    {
        bool finite = true;
        using (var scope = torch.NewDisposeScope())
        using (torch.no_grad())
        {
            using var inverse = (1.0 / Scale).ToScalar();
            foreach (var p in parameters)
            {
                if (p.grad is not Tensor g)
                    continue;
                g.mul_(inverse);
                if (finite && !g.isfinite().all().item<bool>())
                    finite = false;
            }
        }
        return Update(finite);
    }

    /// <summary>The scale rule alone: the decision for a step whose gradients were (not) all finite.</summary>
    public bool Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= _options.BackoffFactor;
            GrowthTracker = 0;
            return false;
        }
        if (++GrowthTracker >= _options.GrowthInterval)
        {
            Scale *= _options.GrowthFactor;
            GrowthTracker = 0;
        }
        return true;
    }
}
