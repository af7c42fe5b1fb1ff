using System.Text;
using Microsoft.ML;
using MLExtensions.Core;

namespace MLExtensions.Multimodal;

/// <summary>Saves a CLIP model's configuration and tokenizer files inside a model zip, so a reload needs no checkpoint folder.</summary>
internal static class ClipPersistence
{
    private const string VocabularyEntry = "ClipVocabulary.json";
    private const string MergesEntry = "ClipMerges.txt";

    public static void Save(ModelSaveContext ctx, ClipConfig config, ClipTokenizer tokenizer)
    {
        NetworkPersistence.SaveOptions(ctx, config);
        SaveTokenizer(ctx, tokenizer);
    }

    /// <summary>The tokenizer alone: context length, vocab.json and merges.txt.</summary>
    public static void SaveTokenizer(ModelSaveContext ctx, ClipTokenizer tokenizer)
    {
        ctx.Writer.Write(tokenizer.ContextLength);
        ctx.SaveBinaryStream(VocabularyEntry, w => w.Write(Encoding.UTF8.GetBytes(tokenizer.VocabularyJson)));
        ctx.SaveBinaryStream(MergesEntry, w => w.Write(Encoding.UTF8.GetBytes(tokenizer.Merges)));
    }

    /// <exception cref="InvalidDataException">The configuration or a tokenizer entry is missing or corrupted.</exception>
    public static (ClipConfig Config, ClipTokenizer Tokenizer) Load(ModelLoadContext ctx, string componentName)
    {
        var config = NetworkPersistence.LoadOptions<ClipConfig>(ctx, componentName);
        try
        {
            config.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new InvalidDataException($"The CLIP configuration of {componentName} in the model file is corrupted: {e.Message}", e);
        }
        return (config, LoadTokenizer(ctx, componentName));
    }

    /// <exception cref="InvalidDataException">A tokenizer entry is missing or corrupted.</exception>
    public static ClipTokenizer LoadTokenizer(ModelLoadContext ctx, string componentName)
    {
        int contextLength = ctx.Reader.ReadInt32();
        string vocabulary = Entry(ctx, VocabularyEntry, componentName), merges = Entry(ctx, MergesEntry, componentName);
        return ClipTokenizer.FromText(vocabulary, merges, contextLength);
    }

    private static string Entry(ModelLoadContext ctx, string name, string componentName)
    {
        string? text = null;
        if (!ctx.TryLoadBinaryStream(name, r => text = Encoding.UTF8.GetString(r.ReadBytes((int)r.BaseStream.Length))) || text is null)
            throw new InvalidDataException($"The {componentName} in the model file has no CLIP tokenizer (entry '{name}' is missing).");
        return text;
    }
}
