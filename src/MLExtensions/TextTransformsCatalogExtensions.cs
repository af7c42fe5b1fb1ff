using Microsoft.ML;
using MLExtensions.Text;

using MLExtensions.Core.Internals;

namespace MLExtensions;

/// <summary>MLExtensions transforms on <c>mlContext.Transforms.Text</c>.</summary>
public static class TextTransformsCatalogExtensions
{
    /// <summary>
    /// Embeds a text column with a frozen BERT-family encoder (all-MiniLM-L6-v2 by default, shipped offline): a
    /// mean-pooled, L2-normalized vector of the encoder's width (384 for MiniLM), usable as features for any trainer.
    /// </summary>
    /// <param name="catalog">The text transforms catalog.</param>
    /// <param name="outputColumnName">The vector column to add.</param>
    /// <param name="inputColumnName">The text column to read.</param>
    /// <param name="options">Settings; null uses the defaults.</param>
    public static SentenceEmbeddingEstimator SentenceEmbedding(this TransformsCatalog.TextTransforms catalog, string outputColumnName,
        string inputColumnName, SentenceEmbeddingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        return new SentenceEmbeddingEstimator(((Microsoft.ML.Data.IInternalCatalog)catalog).Environment, outputColumnName, inputColumnName, options ?? new SentenceEmbeddingOptions());
    }
}
