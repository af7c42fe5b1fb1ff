namespace MLExtensions.Text;

/// <summary>
/// What a pretrained-weight loader (<see cref="MiniLmWeights"/>, <see cref="HuggingFaceCheckpoint"/>) did to a
/// <see cref="BertEncoder"/>: every encoder tensor it overwrote, and the source's entries it left out on purpose, with why.
/// </summary>
public sealed class EncoderWeightLoadReport
{
    internal EncoderWeightLoadReport(string source, IReadOnlyList<string> loadedKeys, IReadOnlyDictionary<string, string> ignoredKeys)
    {
        Source = source;
        LoadedKeys = loadedKeys;
        IgnoredKeys = ignoredKeys;
    }

    /// <summary>Where the weights came from (a file path, or the package and resource name).</summary>
    public string Source { get; }

    /// <summary>The encoder's state-dict keys that were overwritten; always all of them (loading is all or nothing).</summary>
    public IReadOnlyList<string> LoadedKeys { get; }

    /// <summary>
    /// Entries of the source that are not part of the encoder, under their names in the source, with the reason:
    /// the pooler, task heads (<c>cls.*</c>, <c>classifier.*</c>, …) and the <c>position_ids</c> index buffer.
    /// </summary>
    public IReadOnlyDictionary<string, string> IgnoredKeys { get; }

    /// <summary>A one-paragraph summary for logs.</summary>
    public override string ToString()
    {
        string text = $"Loaded {LoadedKeys.Count} encoder tensors from {Source}.";
        if (IgnoredKeys.Count > 0)
        {
            text += " Ignored: " + string.Join("; ", IgnoredKeys.GroupBy(kv => kv.Value)
                .Select(g => $"{string.Join(", ", g.Select(kv => kv.Key))} ({g.Key})")) + ".";
        }
        return text;
    }
}
