namespace MLExtensions.Multimodal;

/// <summary>
/// A model with an image tower and a text tower that embed into one space: a <see cref="ClipModel"/> or a fitted
/// <see cref="ImageTextEncoderTransformer"/>. Either can be the <see cref="ZeroShotImageClassifierOptions.Model"/>.
/// </summary>
public interface IImageTextModel
{
    /// <summary>Size of the joint embeddings.</summary>
    int EmbeddingDimension { get; }

    /// <summary>L2-normalized joint-space embeddings of texts.</summary>
    float[][] EmbedTexts(IReadOnlyList<string?> texts);
}
