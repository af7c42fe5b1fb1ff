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

    // Pruned tokenizers only: the source vocabulary's id → the model's id ([UNK]'s for pieces not kept).
    private readonly int[]? _toModelId;

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
        UnknownId = IndexOf(vocabulary, "[UNK]");
        SourceVocabulary = vocabulary;
    }

    /// <summary>A pruned copy of <paramref name="source"/>: same word pieces, ids renumbered to <paramref name="keptSourceIds"/>.</summary>
    private WordPieceTokenizer(WordPieceTokenizer source, int[] keptSourceIds)
    {
        _tokenizer = source._tokenizer;
        LowerCase = source.LowerCase;
        SourceVocabulary = source.SourceVocabulary;
        KeptSourceIds = keptSourceIds;
        Vocabulary = keptSourceIds.Select(id => source.SourceVocabulary[id]).ToArray();
        UnknownId = Array.IndexOf(keptSourceIds, source.UnknownId);
        _toModelId = Enumerable.Repeat(UnknownId, source.SourceVocabulary.Count).ToArray();
        for (int i = 0; i < keptSourceIds.Length; i++)
            _toModelId[keptSourceIds[i]] = i;
        ClsId = _toModelId[source.ClsId];
        SepId = _toModelId[source.SepId];
        PadId = _toModelId[source.PadId];
    }

    /// <summary>
    /// The vocabulary of the model's ids, line number = id: the source vocabulary, or for a pruned tokenizer the kept pieces
    /// in their source order.
    /// </summary>
    public IReadOnlyList<string> Vocabulary { get; }

    /// <summary>The vocabulary text is tokenized with (the same as <see cref="Vocabulary"/> unless pruned).</summary>
    public IReadOnlyList<string> SourceVocabulary { get; }

    /// <summary>For a pruned tokenizer, the source id of each model id (ascending); null when not pruned.</summary>
    public IReadOnlyList<int>? KeptSourceIds { get; }

    /// <summary>Whether ids are mapped onto a pruned vocabulary (<see cref="Prune"/>).</summary>
    public bool IsPruned => KeptSourceIds is not null;

    /// <summary>Id of [UNK]: what a word piece outside a pruned vocabulary becomes.</summary>
    public int UnknownId { get; }

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

    /// <summary>
    /// Keeps only the given pieces of this (unpruned) tokenizer's vocabulary: text is still split into the same word pieces, and
    /// each piece's id is mapped to its position among the kept ones; a piece not kept becomes [UNK]. [PAD], [UNK], [CLS], [SEP]
    /// and [MASK] (when present) are always kept.
    /// </summary>
    /// <param name="sourceIds">Ids in this tokenizer's vocabulary to keep (any order, repeats ignored).</param>
    /// <exception cref="InvalidOperationException">This tokenizer is already pruned.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public WordPieceTokenizer Prune(IEnumerable<int> sourceIds)
    {
        if (IsPruned)
            throw new InvalidOperationException("The tokenizer is already pruned; prune the unpruned tokenizer instead.");
        var kept = new SortedSet<int>(SpecialIds());
        foreach (int id in sourceIds)
        {
            if (id < 0 || id >= SourceVocabulary.Count)
                throw new ArgumentOutOfRangeException(nameof(sourceIds), id, $"Word piece id {id} is outside the vocabulary of {SourceVocabulary.Count} pieces.");
            kept.Add(id);
        }
        return new WordPieceTokenizer(this, kept.ToArray());
    }

    /// <summary>The model's id of a source vocabulary id ([UNK]'s when a pruned vocabulary lacks the piece).</summary>
    internal int ToModelId(int sourceId) => _toModelId is null ? sourceId : _toModelId[sourceId];

    /// <summary>Source ids of the special tokens a pruned vocabulary always keeps.</summary>
    private IEnumerable<int> SpecialIds()
    {
        foreach (string special in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" })
        {
            int id = IndexOf(SourceVocabulary, special);
            if (id >= 0)
                yield return id;
        }
    }

    private static int IndexOf(IReadOnlyList<string> vocabulary, string piece)
    {
        for (int i = 0; i < vocabulary.Count; i++)
        {
            if (vocabulary[i] == piece)
                return i;
        }
        return -1;
    }

    /// <summary>Word-piece ids of a text without special tokens (empty for null or empty text), in the model's id space.</summary>
    public IReadOnlyList<int> WordPieces(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return Array.Empty<int>();
        var ids = _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        if (_toModelId is null)
            return ids;
        var mapped = new int[ids.Count];
        for (int i = 0; i < mapped.Length; i++)
            mapped[i] = _toModelId[ids[i]];
        return mapped;
    }

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
