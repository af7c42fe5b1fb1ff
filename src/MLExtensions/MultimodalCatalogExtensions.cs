using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core.Internals;
using MLExtensions.Multimodal;

namespace MLExtensions;

/// <summary>MLExtensions' CLIP components on <c>mlContext.Transforms</c> and <c>mlContext.MulticlassClassification.Trainers</c>.</summary>
public static class MultimodalCatalogExtensions
{
    /// <summary>
    /// Adds L2-normalized CLIP image embeddings (joint image/text space) of an image column: MLImage of a fixed size, or
    /// RGB pixel vectors (Single 0–255, C×H×W, as <c>ExtractPixels</c> writes them; declare their size in <paramref name="options"/>).
    /// CLIP's preprocessing (bicubic shortest-side resize, centre crop, CLIP mean/std) runs inside the saved model.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The vector column to add.</param>
    /// <param name="imageColumnName">The image column.</param>
    /// <param name="model">The CLIP model (<see cref="ClipModel.Load"/>); copied at fit time.</param>
    /// <param name="options">The size of pixel-vector images; null for MLImage columns.</param>
    public static ClipEmbeddingEstimator ClipImageEmbedding(this TransformsCatalog catalog, string outputColumnName, string imageColumnName, ClipModel model,
        ClipImageInputOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        return new ClipEmbeddingEstimator(((IInternalCatalog)catalog).Environment, ClipModality.Image, outputColumnName, imageColumnName, model, options);
    }

    /// <summary>Adds L2-normalized CLIP text embeddings (joint image/text space) of a text column.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The vector column to add.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="model">The CLIP model (<see cref="ClipModel.Load"/>); copied at fit time.</param>
    public static ClipEmbeddingEstimator ClipTextEmbedding(this TransformsCatalog catalog, string outputColumnName, string textColumnName, ClipModel model)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        return new ClipEmbeddingEstimator(((IInternalCatalog)catalog).Environment, ClipModality.Text, outputColumnName, textColumnName, model, null);
    }

    /// <summary>
    /// Zero-shot image classification: classes named in text (<see cref="ZeroShotImageClassifierOptions.ClassNames"/>, or the
    /// key values of a key-typed label column), prompts from templates, no training. Produces ML.NET's multiclass columns.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">Model, classes, templates and image column.</param>
    public static ZeroShotImageClassifierTrainer ZeroShotImageClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        ZeroShotImageClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        return new ZeroShotImageClassifierTrainer(((IInternalCatalog)catalog).Environment, options);
    }

    /// <summary>
    /// Trains an image/text dual encoder contrastively on (image, caption) rows with symmetric InfoNCE: LiT-style — the locked
    /// ImageNet ResNet-18 as image tower, MiniLM as text tower, linear projections to <see cref="ImageTextEncoderOptions.ProjectionDimension"/>
    /// and CLIP's learned temperature — or, with <see cref="ImageTextEncoderOptions.ClipModel"/>, fine-tuning both towers of a
    /// CLIP model. The fitted transformer adds the image embedding column, embeds texts, can be the <c>Model</c> of the
    /// zero-shot classifier, and exports its image side to ONNX (<c>mlContext.Model.ExportToOnnx</c>, <c>ToOnnxRuntime</c>, <c>Quantize</c>).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Columns, projection size and training settings.</param>
    public static ImageTextEncoderTrainer ImageTextEncoder(this TransformsCatalog catalog, ImageTextEncoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        MlNetCompatibility.EnsureCompatible();
        return new ImageTextEncoderTrainer(((IInternalCatalog)catalog).Environment, options);
    }
}
