using Microsoft.ML;
using MLExtensions.Explainability;

namespace MLExtensions;

/// <summary>Explanations of fitted models' predictions, on <c>mlContext.Transforms</c>.</summary>
public static class ExplainabilityCatalogExtensions
{
    /// <summary>
    /// Explains the predictions of <paramref name="model"/>: integrated gradients, GradientSHAP, DeepLIFT-SHAP or saliency on
    /// this library's networks, KernelSHAP on any model. <c>Fit</c> reads the background rows; the fitted transformer appends
    /// <c>Attributions</c>, <c>BaseValue</c>, <c>ConvergenceDelta</c>, <c>ExplainedClass</c> (multiclass) and <c>Tokens</c> (text).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The fitted model (a prediction transformer or a chain ending in one).</param>
    /// <param name="options">Settings; null uses the defaults (integrated gradients, 50 steps, background mean).</param>
    public static ExplainPredictionsEstimator ExplainPredictions(this TransformsCatalog catalog, ITransformer model, ExplanationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ExplainPredictionsEstimator(((Microsoft.ML.Data.IInternalCatalog)catalog).Environment, model, options ?? new ExplanationOptions());
    }
}
