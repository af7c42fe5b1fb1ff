using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace MLExtensions.Multimodal;

/// <summary>
/// CLIP's tokenizer: byte-level BPE with <c>&lt;/w&gt;</c> word ends over CLIP's vocabulary, built on
/// Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (byte level, end-of-word suffix, CLIP's pre-tokenizer regex,
/// a normalizer for CLIP's text cleaning). Sequences are <c>&lt;|startoftext|&gt;</c> ids <c>&lt;|endoftext|&gt;</c>,
/// padded with 0 to the context length (77), truncated as OpenAI's <c>clip.tokenize(truncate=True)</c> does.
/// </summary>
/// <remarks>
/// <para>
/// Text cleaning follows OpenAI's <c>simple_tokenizer.py</c>: HTML entities unescaped twice, leading and trailing
/// whitespace removed, runs of whitespace replaced by one space, lower-cased with full case mapping (<c>İ</c> becomes
/// <c>i</c> + combining dot, as Python's <c>str.lower</c>). OpenAI also runs <c>ftfy.fix_text</c> first, which has no .NET
/// port; in its place this tokenizer applies Unicode NFC normalization (the part of ftfy's work that is well defined).
/// Strings that ftfy changes in other ways — curly quotes to straight ones, fullwidth letters to ASCII, ligatures such
/// as <c>ﬁ</c>, repairs of mojibake — get other ids than OpenAI's. Hugging Face's tokenizers differ from OpenAI's on
/// such strings too (the fast one applies no ftfy and no HTML unescaping).
/// </para>
/// <para>Literal <c>&lt;|startoftext|&gt;</c> and <c>&lt;|endoftext|&gt;</c> inside a text become their ids, as in OpenAI's tokenizer.</para>
/// </remarks>
public sealed class ClipTokenizer
{
    /// <summary>The start-of-text token.</summary>
    public const string StartOfText = "<|startoftext|>";

    /// <summary>The end-of-text token.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>CLIP's context length.</summary>
    public const int DefaultContextLength = 77;

    // simple_tokenizer.py's pattern (compiled there with re.IGNORECASE; the text is already lower-case).
    private const string Pattern = @"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

    private readonly BpeTokenizer _bpe;

    private ClipTokenizer(string vocabularyJson, string merges, int contextLength)
    {
        if (contextLength < 2)
            throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "The context length must be at least 2 (start and end tokens).");
        VocabularyJson = vocabularyJson;
        Merges = merges;
        ContextLength = contextLength;

        Dictionary<string, int> vocabulary;
        try
        {
            vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(vocabularyJson) ?? throw new JsonException("vocab.json is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The CLIP vocabulary (vocab.json) is not a JSON object of token → id: {e.Message}", e);
        }
        foreach (string special in new[] { StartOfText, EndOfText })
        {
            if (!vocabulary.ContainsKey(special))
                throw new InvalidDataException($"The CLIP vocabulary (vocab.json) has no '{special}' token; it is not a CLIP vocabulary.");
        }
        StartOfTextId = vocabulary[StartOfText];
        EndOfTextId = vocabulary[EndOfText];
        VocabularySize = vocabulary.Count;

        var specials = new Dictionary<string, int> { [StartOfText] = StartOfTextId, [EndOfText] = EndOfTextId };
        _bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = ReadMerges(merges),
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            SpecialTokens = specials,
            Normalizer = new ClipTextNormalizer(),
            PreTokenizer = new RegexPreTokenizer(new Regex(Pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled), specials),
        });
    }

    /// <summary>Id of <c>&lt;|startoftext|&gt;</c> (49406 in CLIP).</summary>
    public int StartOfTextId { get; }

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c> (49407 in CLIP), the largest id, where OpenAI's text tower pools.</summary>
    public int EndOfTextId { get; }

    /// <summary>Number of entries of the vocabulary.</summary>
    public int VocabularySize { get; }

    /// <summary>Length of the sequences <see cref="Encode"/> returns.</summary>
    public int ContextLength { get; }

    /// <summary>vocab.json's text (kept to save the tokenizer inside a model).</summary>
    internal string VocabularyJson { get; }

    /// <summary>merges.txt's text (kept to save the tokenizer inside a model).</summary>
    internal string Merges { get; }

    /// <summary>Reads Hugging Face's <c>vocab.json</c> and <c>merges.txt</c> (as in a CLIP checkpoint folder).</summary>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">The files are not a CLIP vocabulary.</exception>
    public static ClipTokenizer FromFiles(string vocabularyPath, string mergesPath, int contextLength = DefaultContextLength)
    {
        foreach (var path in new[] { vocabularyPath, mergesPath })
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"CLIP tokenizer file '{path}' does not exist.", path);
        }
        return new ClipTokenizer(File.ReadAllText(vocabularyPath, Encoding.UTF8), File.ReadAllText(mergesPath, Encoding.UTF8), contextLength);
    }

    /// <summary>Creates the tokenizer from the texts of vocab.json and merges.txt.</summary>
    public static ClipTokenizer FromText(string vocabularyJson, string merges, int contextLength = DefaultContextLength) =>
        new(vocabularyJson, merges, contextLength);

    /// <summary>The text as the BPE sees it: HTML unescaped twice, whitespace cleaned, NFC, lower-cased (see the class remarks).</summary>
    public static string Clean(string? text) => ClipTextNormalizer.Clean(text ?? "");

    /// <summary>BPE ids of a text, without start/end tokens, padding or truncation (OpenAI's <c>SimpleTokenizer.encode</c>).</summary>
    public IReadOnlyList<int> EncodeToIds(string? text) =>
        string.IsNullOrEmpty(text) ? Array.Empty<int>() : _bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true);

    /// <summary>
    /// <c>&lt;|startoftext|&gt;</c> ids <c>&lt;|endoftext|&gt;</c>, zero-padded to <see cref="ContextLength"/>; a text too long
    /// is cut and its last id replaced by <c>&lt;|endoftext|&gt;</c> (OpenAI's <c>clip.tokenize(truncate=True)</c>).
    /// </summary>
    public long[] Encode(string? text)
    {
        var ids = EncodeToIds(text);
        var result = new long[ContextLength];
        result[0] = StartOfTextId;
        int count = Math.Min(ids.Count, ContextLength - 2);
        for (int i = 0; i < count; i++)
            result[i + 1] = ids[i];
        result[count + 1] = EndOfTextId;
        return result;
    }

    /// <summary>Decodes ids back to text (special tokens included).</summary>
    public string? Decode(IEnumerable<int> ids) => _bpe.Decode(ids);

    private static List<string> ReadMerges(string merges)
    {
        // Hugging Face reads merges.txt as read().strip().split("\n")[1:]: the first line is "#version: ...".
        var lines = merges.Replace("\r\n", "\n").Trim().Split('\n');
        var result = new List<string>(lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            if (i == 0 && lines[0].StartsWith("#version", StringComparison.Ordinal))
                continue;
            if (lines[i].Length == 0)
                continue;
            if (lines[i].Split(' ').Length != 2)
                throw new InvalidDataException($"merges.txt line {i + 1} is '{lines[i]}'; expected two tokens separated by one space.");
            result.Add(lines[i]);
        }
        if (result.Count == 0)
            throw new InvalidDataException("merges.txt has no merges.");
        return result;
    }

    /// <summary>CLIP's text cleaning as a Microsoft.ML.Tokenizers normalizer.</summary>
    private sealed class ClipTextNormalizer : Normalizer
    {
        private static readonly Regex Whitespace = new(@"\s+", RegexOptions.Compiled);

        public override string Normalize(string original) => Clean(original);

        public override string Normalize(ReadOnlySpan<char> original) => Clean(original.ToString());

        public static string Clean(string text)
        {
            // ftfy.fix_text stand-in (see the class remarks), then html.unescape twice and strip, as basic_clean does.
            text = text.Normalize(NormalizationForm.FormC);
            text = WebUtility.HtmlDecode(WebUtility.HtmlDecode(text)).Trim();
            text = Whitespace.Replace(text, " ").Trim();
            return Lower(text);
        }

        private static string Lower(string text)
        {
            // Python's str.lower uses full case mapping; .NET's invariant lower-casing is simple mapping. The only
            // difference for lower-casing is U+0130 (İ → i + U+0307).
            string lower = text.ToLowerInvariant();
            return text.Contains('\u0130') ? BuildWithDottedI(text, lower) : lower;
        }

        private static string BuildWithDottedI(string text, string lower)
        {
            var builder = new StringBuilder(lower.Length + 4);
            for (int i = 0; i < text.Length; i++)
            {
                if (text[i] == '\u0130')
                    builder.Append("i\u0307");
                else
                    builder.Append(lower[i]);
            }
            return builder.ToString();
        }
    }
}
