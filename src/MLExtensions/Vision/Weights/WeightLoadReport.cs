using MLExtensions.Core;
namespace MLExtensions.Vision;

/// <summary>What <see cref="TorchvisionWeights"/> did: which entries it loaded and which it left alone, and why.</summary>
public sealed class WeightLoadReport
{
    internal WeightLoadReport(string path, WeightFileFormat format, IReadOnlyList<string> loaded, IReadOnlyList<string> skippedHead,
        string? headSkipReason, IReadOnlyList<string> missingOptional)
    {
        Path = path;
        Format = format;
        LoadedKeys = loaded;
        SkippedHeadKeys = skippedHead;
        HeadSkipReason = headSkipReason;
        MissingOptionalKeys = missingOptional;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>Its format.</summary>
    public WeightFileFormat Format { get; }

    /// <summary>State-dict entries of the network overwritten from the file.</summary>
    public IReadOnlyList<string> LoadedKeys { get; }

    /// <summary>The head's entries (e.g. <c>fc.weight</c>, <c>fc.bias</c>), left at their initial values; empty when the head was loaded.</summary>
    public IReadOnlyList<string> SkippedHeadKeys { get; }

    /// <summary>Why the head was not loaded (asked for, or a different class count); null when it was.</summary>
    public string? HeadSkipReason { get; }

    /// <summary>Whether the head was loaded from the file.</summary>
    public bool HeadLoaded => HeadSkipReason is null;

    /// <summary>
    /// Batch-norm <c>num_batches_tracked</c> counters absent from the file and left at their initial values.
    /// Files saved before PyTorch 0.4.1, such as torchvision's original ImageNet weights, do not have them;
    /// they only matter when batch norm uses a cumulative average (momentum null), which these networks do not.
    /// </summary>
    public IReadOnlyList<string> MissingOptionalKeys { get; }

    /// <summary>A one-paragraph summary for logs.</summary>
    public override string ToString()
    {
        var text = $"Loaded {LoadedKeys.Count} tensors from '{Path}' ({Format}).";
        if (HeadSkipReason is not null)
            text += $" Head not loaded ({HeadSkipReason}); kept initial values for {string.Join(", ", SkippedHeadKeys)}.";
        if (MissingOptionalKeys.Count > 0)
            text += $" {MissingOptionalKeys.Count} num_batches_tracked counters absent from the file kept their initial values.";
        return text;
    }
}
