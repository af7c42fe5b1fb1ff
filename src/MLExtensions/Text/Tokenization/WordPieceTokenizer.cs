using System.Text;
using Microsoft.ML.Tokenizers;

namespace MLExtensions.Text;

/// <summary>One tokenized example: token ids with [CLS]/[SEP], and token type ids (0 for the first text, 1 for the second).</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="TypeIds">Token type (segment) ids, same length.</param>
public sealed record TokenizedText(int[] Ids, int[] TypeIds)
{
    /// <summary>Number of tokens.</summary>
    public int Length => Ids.Length;
}

/// <summary>
/// BERT WordPiece tokenization (through Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>) with the conventions the
/// encoder needs: [CLS] text [SEP] (and text₂ [SEP] for pairs), truncation to a maximum length, token types.
/// The vocabulary is kept so it can be saved inside the model.
/// </summary>
/// <remarks>
/// Truncation: a single text keeps its first <c>maxLength − 2</c> word pieces. A pair is truncated longest-first (one
/// token at a time from the longer text) to fit <c>maxLength − 3</c>, as Hugging Face's tokenizers do. Null and empty
/// text give just the special tokens, so every row gets a prediction. A lower-casing tokenizer also strips accents
/// ("Café" → "cafe"), as Hugging Face's does unless <c>strip_accents</c> is set explicitly.
/// </remarks>
public sealed class WordPieceTokenizer
{
    private readonly BertTokenizer _tokenizer;

    /// <summary>Creates the tokenizer from vocabulary lines (one word piece per line, line number = id).</summary>
    /// <exception cref="ArgumentException">The vocabulary is empty or lacks [CLS], [SEP], [PAD] or [UNK].</exception>
    public WordPieceTokenizer(IReadOnlyList<string> vocabulary, bool lowerCase)
    {
        if (vocabulary.Count == 0)
            throw new ArgumentException("The vocabulary is empty.", nameof(vocabulary));
        foreach (string special in new[] { "[CLS]", "[SEP]", "[PAD]", "[UNK]" })
        {
            if (!vocabulary.Contains(special))
                throw new ArgumentException($"The vocabulary has no '{special}' token; it is not a BERT WordPiece vocabulary.", nameof(vocabulary));
        }
        Vocabulary = vocabulary;
        LowerCase = lowerCase;
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', vocabulary) + "\n"));
        // Hugging Face's BERT tokenizer strips accents whenever it lower-cases (strip_accents unset, as for MiniLM and
        // bert-base-uncased); uncased vocabularies have no accented pieces, so without this "café" became [UNK].
        _tokenizer = BertTokenizer.Create(stream, new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            RemoveNonSpacingMarks = lowerCase,
            ApplyBasicTokenization = true,
        });
        ClsId = _tokenizer.ClassificationTokenId;
        SepId = _tokenizer.SeparatorTokenId;
        PadId = _tokenizer.PaddingTokenId;
    }

    /// <summary>The vocabulary, line number = id.</summary>
    public IReadOnlyList<string> Vocabulary { get; }

    /// <summary>Whether text is lower-cased (and its accents stripped) first.</summary>
    public bool LowerCase { get; }

    /// <summary>Id of [CLS].</summary>
    public int ClsId { get; }

    /// <summary>Id of [SEP].</summary>
    public int SepId { get; }

    /// <summary>Id of [PAD].</summary>
    public int PadId { get; }

    /// <summary>Reads a vocab.txt stream.</summary>
    public static IReadOnlyList<string> ReadVocabulary(Stream stream)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var lines = new List<string>();
        while (reader.ReadLine() is string line)
            lines.Add(line.TrimEnd('\r'));
        while (lines.Count > 0 && lines[^1].Length == 0)
            lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    /// <summary>Word-piece ids of a text without special tokens (empty for null or empty text).</summary>
    public IReadOnlyList<int> WordPieces(string? text) =>
        string.IsNullOrEmpty(text) ? Array.Empty<int>() : _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);

    /// <summary>Tokenizes one text, or a pair, to at most <paramref name="maxLength"/> tokens including special tokens.</summary>
    public TokenizedText Encode(string? text, string? second, int maxLength)
    {
        var a = WordPieces(text).ToList();
        if (second is null)
        {
            if (a.Count > maxLength - 2)
                a.RemoveRange(maxLength - 2, a.Count - (maxLength - 2));
            var ids = new int[a.Count + 2];
            ids[0] = ClsId;
            a.CopyTo(ids, 1);
            ids[^1] = SepId;
            return new TokenizedText(ids, new int[ids.Length]);
        }
        var b = WordPieces(second).ToList();
        while (a.Count + b.Count > maxLength - 3)
        {
            var longer = a.Count >= b.Count ? a : b;
            longer.RemoveAt(longer.Count - 1);
        }
        var pairIds = new List<int>(a.Count + b.Count + 3) { ClsId };
        pairIds.AddRange(a);
        pairIds.Add(SepId);
        pairIds.AddRange(b);
        pairIds.Add(SepId);
        var types = new int[pairIds.Count];
        for (int i = a.Count + 2; i < types.Length; i++)
            types[i] = 1;
        return new TokenizedText(pairIds.ToArray(), types);
    }
}
