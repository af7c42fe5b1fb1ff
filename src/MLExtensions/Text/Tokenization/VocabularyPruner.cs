namespace MLExtensions.Text;

/// <summary>Chooses the word pieces a pruned vocabulary keeps (<see cref="VocabularyPruningOptions"/>) .</summary>
internal static class VocabularyPruner
{
    /// <summary>
    /// The tokenizer restricted to the pieces that occur in <paramref name="rows"/> (tokenized with <paramref name="full"/>), the
    /// special tokens, and the first <see cref="VocabularyPruningOptions.KeepFirstPieces"/> ordinary pieces of the vocabulary.
    /// </summary>
    public static WordPieceTokenizer Prune(WordPieceTokenizer full, IEnumerable<TokenizedText> rows, VocabularyPruningOptions options)
    {
        var kept = new HashSet<int>();
        foreach (var row in rows)
            kept.UnionWith(row.Ids);
        var vocabulary = full.Vocabulary;
        for (int id = 0, floor = 0; id < vocabulary.Count && floor < options.KeepFirstPieces; id++)
        {
            // [unusedN] placeholders and the special tokens are not words; the floor counts ordinary pieces only.
            if (vocabulary[id].StartsWith('[') && vocabulary[id].EndsWith(']'))
                continue;
            kept.Add(id);
            floor++;
        }
        return full.Prune(kept);
    }
}
