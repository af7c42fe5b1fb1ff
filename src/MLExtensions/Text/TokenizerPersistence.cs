using System.Text;
using Microsoft.ML;

namespace MLExtensions.Text;

/// <summary>Saves a text model's tokenizer (vocabulary and casing) inside the model zip, so loading needs no other file.</summary>
/// <remarks>
/// A pruned tokenizer (<see cref="WordPieceTokenizer.Prune"/>) also saves the vocabulary text is tokenized with and the source
/// id of each kept piece; models saved before pruning existed have neither entry and load unpruned.
/// </remarks>
internal static class TokenizerPersistence
{
    private const string VocabularyEntry = "Vocabulary.txt";
    private const string SourceVocabularyEntry = "SourceVocabulary.txt";
    private const string KeptIdsEntry = "KeptSourceIds.bin";

    public static void Save(ModelSaveContext ctx, WordPieceTokenizer tokenizer)
    {
        ctx.Writer.Write(tokenizer.LowerCase);
        ctx.SaveBinaryStream(VocabularyEntry, w => w.Write(Encoding.UTF8.GetBytes(string.Join('\n', tokenizer.Vocabulary))));
        if (tokenizer.KeptSourceIds is { } kept)
        {
            ctx.SaveBinaryStream(SourceVocabularyEntry, w => w.Write(Encoding.UTF8.GetBytes(string.Join('\n', tokenizer.SourceVocabulary))));
            ctx.SaveBinaryStream(KeptIdsEntry, w =>
            {
                w.Write(kept.Count);
                foreach (int id in kept)
                    w.Write(id);
            });
        }
    }

    /// <exception cref="InvalidDataException">The vocabulary is missing or does not match the encoder's configuration.</exception>
    public static WordPieceTokenizer Load(ModelLoadContext ctx, BertConfig config, string componentName) =>
        Load(ctx, config.VocabSize, componentName);

    /// <summary>Reads a tokenizer whose vocabulary must have <paramref name="vocabularySize"/> entries.</summary>
    public static WordPieceTokenizer Load(ModelLoadContext ctx, int vocabularySize, string componentName)
    {
        bool lowerCase = ctx.Reader.ReadBoolean();
        IReadOnlyList<string>? vocabulary = null, source = null;
        int[]? kept = null;
        if (!ctx.TryLoadBinaryStream(VocabularyEntry, r => vocabulary = WordPieceTokenizer.ReadVocabulary(r.BaseStream)) || vocabulary is null)
            throw new InvalidDataException($"The {componentName} in the model file has no vocabulary (entry '{VocabularyEntry}' is missing).");
        if (vocabulary.Count != vocabularySize)
            throw new InvalidDataException($"The {componentName} in the model file is corrupted: {vocabulary.Count} vocabulary entries for an encoder of {vocabularySize}.");
        if (!ctx.TryLoadBinaryStream(SourceVocabularyEntry, r => source = WordPieceTokenizer.ReadVocabulary(r.BaseStream)))
            return new WordPieceTokenizer(vocabulary, lowerCase);
        if (!ctx.TryLoadBinaryStream(KeptIdsEntry, r => kept = Enumerable.Range(0, r.ReadInt32()).Select(_ => r.ReadInt32()).ToArray()) || kept is null)
            throw new InvalidDataException($"The {componentName} in the model file is corrupted: it has a pruned vocabulary but no '{KeptIdsEntry}' entry.");
        var pruned = new WordPieceTokenizer(source!, lowerCase).Prune(kept);
        if (!pruned.Vocabulary.SequenceEqual(vocabulary))
            throw new InvalidDataException($"The {componentName} in the model file is corrupted: its pruned vocabulary does not match the kept pieces of its source vocabulary.");
        return pruned;
    }
}
