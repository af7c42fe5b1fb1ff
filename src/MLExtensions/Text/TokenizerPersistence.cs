using System.Text;
using Microsoft.ML;

namespace MLExtensions.Text;

/// <summary>Saves a text model's tokenizer (vocabulary and casing) inside the model zip, so loading needs no other file.</summary>
internal static class TokenizerPersistence
{
    private const string VocabularyEntry = "Vocabulary.txt";

    public static void Save(ModelSaveContext ctx, WordPieceTokenizer tokenizer)
    {
        ctx.Writer.Write(tokenizer.LowerCase);
        ctx.SaveBinaryStream(VocabularyEntry, w => w.Write(Encoding.UTF8.GetBytes(string.Join('\n', tokenizer.Vocabulary))));
    }

    /// <exception cref="InvalidDataException">The vocabulary is missing or does not match the encoder's configuration.</exception>
    public static WordPieceTokenizer Load(ModelLoadContext ctx, BertConfig config, string componentName) =>
        Load(ctx, config.VocabSize, componentName);

    /// <summary>Reads a tokenizer whose vocabulary must have <paramref name="vocabularySize"/> entries.</summary>
    public static WordPieceTokenizer Load(ModelLoadContext ctx, int vocabularySize, string componentName)
    {
        bool lowerCase = ctx.Reader.ReadBoolean();
        IReadOnlyList<string>? vocabulary = null;
        if (!ctx.TryLoadBinaryStream(VocabularyEntry, r => vocabulary = WordPieceTokenizer.ReadVocabulary(r.BaseStream)) || vocabulary is null)
            throw new InvalidDataException($"The {componentName} in the model file has no vocabulary (entry '{VocabularyEntry}' is missing).");
        if (vocabulary.Count != vocabularySize)
            throw new InvalidDataException($"The {componentName} in the model file is corrupted: {vocabulary.Count} vocabulary entries for an encoder of {vocabularySize}.");
        return new WordPieceTokenizer(vocabulary, lowerCase);
    }
}
