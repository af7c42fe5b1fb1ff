using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>How attributions are computed.</summary>
public enum ExplanationMethod
{
    /// <summary>
    /// Integrated gradients (Sundararajan et al. 2017, captum's <c>IntegratedGradients</c>): (x − baseline) times the
    /// gradient averaged along the straight path, by Gauss–Legendre quadrature. Networks of this library only.
    /// </summary>
    IntegratedGradients,

    /// <summary>
    /// Expected gradients (shap's <c>GradientExplainer</c>, captum's <c>GradientShap</c>): per sample a random background row
    /// and a random point on the path to it. Networks of this library only.
    /// </summary>
    GradientShap,

    /// <summary>
    /// DeepLIFT with the rescale rule, averaged over background rows (shap's <c>DeepExplainer</c>). Exact (attributions sum
    /// to f(x) − E[f]) on the MLP, the CNNs and ResNets; on BERT text classifiers the rule covers GELU and the attention
    /// softmax while the attention products and LayerNorm pass gradients, as in shap, so <c>ConvergenceDelta</c> is small but not 0.
    /// </summary>
    DeepLiftShap,

    /// <summary>The absolute gradient at the row (captum's <c>Saliency</c>); no completeness. Networks of this library only.</summary>
    Saliency,

    /// <summary>
    /// Kernel SHAP (shap's <c>KernelExplainer</c>): model-agnostic, works on any fitted ML.NET model or pipeline through
    /// <c>Transform</c>. The other columns of the explained row are copied into every synthetic row. The explained column is
    /// a vector of Single (players: slots or <see cref="ExplanationOptions.FeatureGroups"/>, e.g. <see cref="ImagePatches"/>),
    /// an MLImage column (players: patches, a 4×4 grid by default; an absent patch takes the background's pixel-wise mean
    /// image; <c>Attributions</c> are 3×H×W, R, G, B) or text (players: the words, split on whitespace; an absent word is
    /// removed; <c>Tokens</c> holds the words).
    /// </summary>
    KernelShap,
}

/// <summary>What the explained rows are compared with.</summary>
public enum BaselineKind
{
    /// <summary>
    /// The background rows given to <c>Fit</c>: their mean for <see cref="ExplanationMethod.IntegratedGradients"/> and
    /// <see cref="ExplanationMethod.Saliency"/>, the rows themselves for the SHAP methods, except KernelSHAP on an MLImage
    /// column, which takes the background images' pixel-wise mean (one synthetic image per coalition).
    /// </summary>
    Background,

    /// <summary>A row of zeros.</summary>
    Zeros,

    /// <summary>The vector in <see cref="ExplanationOptions.BaselineValues"/>.</summary>
    Given,
}

/// <summary>How KernelSHAP maps model outputs before the regression (shap's <c>link</c>).</summary>
public enum ExplanationLink
{
    /// <summary>Explain the output as it is.</summary>
    Identity,

    /// <summary>Explain log(p / (1 − p)) of a probability output.</summary>
    Logit,
}

/// <summary>Settings of <c>mlContext.Transforms.ExplainPredictions</c>.</summary>
public sealed class ExplanationOptions
{
    /// <summary>The attribution method. Default <see cref="ExplanationMethod.IntegratedGradients"/>.</summary>
    public ExplanationMethod Method { get; set; } = ExplanationMethod.IntegratedGradients;

    /// <summary>
    /// The column whose values are explained. Default: the column the model's network reads (features, image or text);
    /// for <see cref="ExplanationMethod.KernelShap"/> on other models, <c>Features</c>. KernelSHAP explains a vector of
    /// Single or a text column, with the row's other columns unchanged.
    /// </summary>
    public string? InputColumnName { get; set; }

    /// <summary>Class (0-based index into the model's Score vector) whose output is explained. Default: the predicted class of each row.</summary>
    public int? TargetClass { get; set; }

    /// <summary>Integration points of integrated gradients (Gauss–Legendre). Default 50.</summary>
    public int Steps { get; set; } = 50;

    /// <summary>
    /// Samples per row: GradientSHAP's path samples (default 200); KernelSHAP's coalitions (default 2M + 2048, or every
    /// coalition when 2^M − 2 is fewer); noisy copies averaged when <see cref="NoiseStandardDeviation"/> &gt; 0 (default 10).
    /// </summary>
    public int? Samples { get; set; }

    /// <summary>Background rows read by <c>Fit</c> (the first ones). Default 100.</summary>
    public int BackgroundRows { get; set; } = 100;

    /// <summary>What rows are compared with. Default <see cref="BaselineKind.Background"/>.</summary>
    public BaselineKind Baseline { get; set; } = BaselineKind.Background;

    /// <summary>The baseline row when <see cref="Baseline"/> is <see cref="BaselineKind.Given"/> (size of the explained column).</summary>
    public float[]? BaselineValues { get; set; }

    /// <summary>
    /// Standard deviation of Gaussian noise added to the row (SmoothGrad, captum's <c>NoiseTunnel</c>) for the gradient
    /// methods; attributions are averaged over the noisy copies. Default 0 (no noise).
    /// </summary>
    public double NoiseStandardDeviation { get; set; }

    /// <summary>
    /// KernelSHAP only: groups of slot indices (of a vector column, e.g. <see cref="ImagePatches.Groups"/>), of the 3×H×W
    /// RGB values of an MLImage column (e.g. <c>ImagePatches.Groups(3, height, width, 2, 2)</c>) or word indices (of a text
    /// column) explained as one player each. Every slot or word must be in exactly one group; each gets the group's value
    /// divided by its size. Default: one slot or word per group; for an MLImage column, a 4×4 grid of patches.
    /// </summary>
    public int[][]? FeatureGroups { get; set; }

    /// <summary>KernelSHAP only: the link applied to the model output. Default <see cref="ExplanationLink.Identity"/>.</summary>
    public ExplanationLink Link { get; set; } = ExplanationLink.Identity;

    /// <summary>Seed of the random draws (GradientSHAP, KernelSHAP sampling, noise). Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>The number of samples used for <paramref name="method"/> with <paramref name="players"/> KernelSHAP players.</summary>
    internal int SamplesFor(ExplanationMethod method, int players) => Samples ?? method switch
    {
        ExplanationMethod.GradientShap => 200,
        ExplanationMethod.KernelShap => players >= 30 ? 2 * players + 2048 : (int)Math.Min(2L * players + 2048, (1L << players) - 2),
        _ => 10,
    };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        Check.Positive(Steps, nameof(Steps));
        if (Samples is { } samples)
            Check.Positive(samples, nameof(Samples));
        Check.Positive(BackgroundRows, nameof(BackgroundRows));
        if (double.IsNaN(NoiseStandardDeviation) || NoiseStandardDeviation < 0)
            throw new ArgumentOutOfRangeException(nameof(NoiseStandardDeviation), NoiseStandardDeviation, $"NoiseStandardDeviation must be ≥ 0; found {NoiseStandardDeviation}.");
        if (TargetClass is < 0)
            throw new ArgumentOutOfRangeException(nameof(TargetClass), TargetClass, $"TargetClass must be a class index ≥ 0; found {TargetClass}.");
        if (Baseline == BaselineKind.Given && (BaselineValues is null || BaselineValues.Length == 0))
            throw new ArgumentException("Baseline = Given needs BaselineValues (one value per slot of the explained column).", nameof(BaselineValues));
        if (FeatureGroups is not null && Method != ExplanationMethod.KernelShap)
            throw new ArgumentException($"FeatureGroups are used by KernelShap only; the method is {Method}.", nameof(FeatureGroups));
    }
}
