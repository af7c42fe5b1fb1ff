namespace MLExtensions.Text;

/// <summary>
/// Vocabulary pruning for a text model trained from scratch (<see cref="TextEncoderSource.Scratch"/>): the encoder gets word
/// embeddings only for the word pieces its training data (in distillation: the whole transfer set) uses, instead of a row for
/// each of the vocabulary's 30,522 pieces. Set on <see cref="TextClassifierOptions.VocabularyPruning"/>.
/// </summary>
/// <remarks>
/// <para>Text is still tokenized with the full vocabulary (so the pieces are the teacher's, position for position), and each
/// piece's id is then mapped to its row in the pruned table; a piece that was not kept becomes <c>[UNK]</c>. The full
/// vocabulary and the mapping are saved inside the model, so a loaded model tokenizes exactly as the trained one did.</para>
/// <para>Why: with MiniLM's vocabulary the word-embedding table is most of a small encoder (3.9 M of the 4.4 M parameters of a
/// 2 × 128 student). The ~3,600 fine-food training reviews with their sentence rows use about a third of the pieces, so
/// pruning frees room for a wider encoder within the same parameter budget.</para>
/// </remarks>
public sealed class VocabularyPruningOptions
{
    /// <summary>Prune the vocabulary to the pieces the training rows use. Default false (every piece keeps its row).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Also keep this many ordinary word pieces from the start of the vocabulary, whether the training rows use them or not
    /// (bracketed placeholders such as <c>[unused5]</c> are skipped). BERT-family vocabularies, MiniLM's included, list the
    /// single characters and then the word pieces from the most to the least frequent in their pretraining corpus, so this
    /// floor keeps common words that a small training set happens to lack from turning into <c>[UNK]</c>. Default 0.
    /// </summary>
    public int KeepFirstPieces { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (KeepFirstPieces < 0)
            throw new ArgumentOutOfRangeException(nameof(KeepFirstPieces), KeepFirstPieces, $"VocabularyPruning.KeepFirstPieces must be ≥ 0; found {KeepFirstPieces}.");
    }
}
