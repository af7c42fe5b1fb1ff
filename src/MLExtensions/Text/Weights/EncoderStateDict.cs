using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>The strict copy shared by the pretrained-weight loaders: names and shapes must match both ways before anything is written.</summary>
internal static class EncoderStateDict
{
    /// <summary>
    /// Copies <paramref name="weights"/> (already renamed to the encoder's keys, ignored entries removed) into
    /// <paramref name="encoder"/>. Every encoder key must be present with the same shape, and no other key may be left:
    /// a tensor the encoder has no place for means the source describes another architecture (e.g. more layers),
    /// which would otherwise load silently and wrongly.
    /// </summary>
    /// <param name="encoder">The encoder to fill; its dtype and device are kept.</param>
    /// <param name="weights">Source tensors by encoder key; not disposed.</param>
    /// <param name="ignored">Source entries left out on purpose (source name → reason), for the report.</param>
    /// <param name="source">The source, for messages: a quoted path or a resource name.</param>
    /// <param name="fix">What to check when the shapes or names differ, appended to error messages.</param>
    /// <exception cref="InvalidDataException">A key is missing, unexpected or has another shape (the first one, with both shapes).</exception>
    public static EncoderWeightLoadReport Copy(BertEncoder encoder, IReadOnlyDictionary<string, Tensor> weights,
        IReadOnlyDictionary<string, string> ignored, string source, string fix)
    {
        var target = encoder.state_dict();
        foreach (var (key, tensor) in target)
        {
            if (!weights.TryGetValue(key, out var value))
                throw new InvalidDataException($"{source} has no weight for the encoder's '{key}' {Shape(tensor)}. {fix}");
            if (!value.shape.SequenceEqual(tensor.shape))
                throw new InvalidDataException($"{source}: '{key}' has shape {Shape(value)} but the encoder's is {Shape(tensor)}. {fix}");
        }
        string? unexpected = weights.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (unexpected is not null)
            throw new InvalidDataException($"{source} has '{unexpected}' {Shape(weights[unexpected])}, which the encoder does not have. {fix}");

        using (torch.no_grad())
        {
            foreach (var (key, tensor) in target)
                tensor.copy_(weights[key]); // copy_ converts dtype (e.g. float16 checkpoints) and device
        }
        return new EncoderWeightLoadReport(source, target.Keys.ToList(), ignored);
    }

    public static string Shape(Tensor tensor) => "[" + string.Join(", ", tensor.shape) + "]";
}
