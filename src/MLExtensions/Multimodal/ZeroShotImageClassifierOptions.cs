namespace MLExtensions.Multimodal;

/// <summary>Options of <c>mlContext.MulticlassClassification.Trainers.ZeroShotImageClassifier</c>.</summary>
public sealed class ZeroShotImageClassifierOptions
{
    /// <summary>
    /// The model whose towers classify (required): a <see cref="ClipModel"/> or a fitted <see cref="ImageTextEncoderTransformer"/>.
    /// Fitting copies its image tower; the model can be disposed afterwards.
    /// </summary>
    public IImageTextModel? Model { get; set; }

    /// <summary>
    /// The class names, in class order (PredictedLabel key 1 is the first). May be left empty when the data has a key-typed
    /// label column with text key values: the classes then follow its key values. When both are given they must name the same classes.
    /// </summary>
    public IList<string> ClassNames { get; set; } = new List<string>();

    /// <summary>Prompt templates; <c>{}</c> is replaced by the class name. Several templates are ensembled (mean of the
    /// normalized text embeddings per class, renormalized). Default: <c>"a photo of a {}."</c>; see <see cref="ZeroShotPromptTemplates"/>.</summary>
    public IList<string> PromptTemplates { get; set; } = new List<string>(ZeroShotPromptTemplates.Default);

    /// <summary>The image column: MLImage of a fixed size, or RGB pixels (Single 0–255, C×H×W). Default "Image".</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>The label column used, when present and key-typed, to order the classes. Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Height of the images in a pixel-vector column.</summary>
    public int? ImageHeight { get; set; }

    /// <summary>Width of the images in a pixel-vector column.</summary>
    public int? ImageWidth { get; set; }

    /// <summary>Throws naming the first invalid setting.</summary>
    /// <param name="classesFromLabel">Whether the classes can come from the label column (then <see cref="ClassNames"/> may be empty).</param>
    /// <exception cref="ArgumentException">A missing model, empty or duplicate class names, or a template without <c>{}</c>.</exception>
    public void Validate(bool classesFromLabel = false)
    {
        if (Model is null)
            throw new ArgumentNullException(nameof(Model), "Model must be set: a CLIP model (ClipModel.Load(folder)) or a fitted ImageTextEncoder.");
        if (ClassNames is null || (ClassNames.Count == 0 && !classesFromLabel))
            throw new ArgumentException("ClassNames is empty: name at least two classes, or give the data a key-typed label column whose key values are the class names.", nameof(ClassNames));
        var blank = ClassNames.Select((n, i) => (n, i)).FirstOrDefault(p => string.IsNullOrWhiteSpace(p.n));
        if (blank.n is not null || ClassNames.Any(n => n is null))
            throw new ArgumentException($"ClassNames[{ClassNames.IndexOf(blank.n!)}] is empty; every class needs a name.", nameof(ClassNames));
        var duplicate = ClassNames.GroupBy(n => n.Trim(), StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"ClassNames has '{duplicate.Key}' {duplicate.Count()} times (ignoring case); class names must be distinct, or their prompts would be identical.", nameof(ClassNames));
        if (ClassNames.Count == 1)
            throw new ArgumentException($"ClassNames has only '{ClassNames[0]}'; a classifier needs at least two classes.", nameof(ClassNames));
        if (PromptTemplates is null || PromptTemplates.Count == 0)
            throw new ArgumentException("PromptTemplates is empty; use e.g. \"a photo of a {}.\".", nameof(PromptTemplates));
        var bad = PromptTemplates.FirstOrDefault(t => t is null || !t.Contains("{}", StringComparison.Ordinal));
        if (PromptTemplates.Any(t => t is null || !t.Contains("{}", StringComparison.Ordinal)))
            throw new ArgumentException($"The prompt template '{bad}' has no '{{}}' placeholder for the class name.", nameof(PromptTemplates));
        if (ImageHeight is <= 0 || ImageWidth is <= 0)
            throw new ArgumentOutOfRangeException(ImageHeight is <= 0 ? nameof(ImageHeight) : nameof(ImageWidth), "Image sizes must be positive.");
    }
}

/// <summary>Prompt-template presets for zero-shot classification.</summary>
public static class ZeroShotPromptTemplates
{
    /// <summary>CLIP's default single prompt: "a photo of a {}.".</summary>
    public static IReadOnlyList<string> Default { get; } = new[] { "a photo of a {}." };

    /// <summary>The 18 templates CLIP's authors published for CIFAR-10 and CIFAR-100 (OpenAI CLIP, data/prompts.md).</summary>
    public static IReadOnlyList<string> Cifar { get; } = new[]
    {
        "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.", "a low contrast photo of a {}.",
        "a high contrast photo of a {}.", "a bad photo of a {}.", "a good photo of a {}.", "a photo of a small {}.",
        "a photo of a big {}.", "a photo of the {}.", "a blurry photo of the {}.", "a black and white photo of the {}.",
        "a low contrast photo of the {}.", "a high contrast photo of the {}.", "a bad photo of the {}.", "a good photo of the {}.",
        "a photo of the small {}.", "a photo of the big {}.",
    };
}
