namespace MLExtensions.Tests.Text;

/// <summary>A tiny WordPiece vocabulary and a synthetic sentiment rule for fast text tests.</summary>
public static class TinyText
{
    public static readonly string[] Positive = { "great", "excellent", "tasty", "lovely" };
    public static readonly string[] Negative = { "awful", "stale", "bland", "terrible" };
    public static readonly string[] Filler = { "the", "coffee", "was", "really", "quite", "and", "tea", "cookies", "very", "a", "bit", "box" };

    /// <summary>Special tokens first (BERT's order), then whole words, then a few word pieces.</summary>
    public static IReadOnlyList<string> Vocabulary { get; } =
        new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Positive).Concat(Negative).Concat(Filler)
            .Concat(new[] { "un", "##tasty", "##s", ".", "!" }).ToList();

    /// <summary>A text classifier with a one-layer encoder trained from scratch on this vocabulary.</summary>
    public static MLExtensions.Text.TextClassifierOptions ScratchClassifier(int hidden, int maxPositions, int maxLength, int epochs) => new()
    {
        Encoder = MLExtensions.Text.TextEncoderSource.Scratch,
        ScratchVocabulary = Vocabulary,
        ScratchConfig = MLExtensions.Text.BertConfig.Small(Vocabulary.Count, layers: 1, hidden: hidden, heads: 2, maxPositions: maxPositions),
        MaxLength = maxLength,
        Epochs = epochs,
        BatchSize = 16,
        Seed = 1,
    };

    public sealed class Row
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }
    }

    /// <summary>Sentences of filler words with one sentiment word somewhere; the label says which kind.</summary>
    public static List<Row> Make(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>();
        for (int i = 0; i < count; i++)
        {
            bool positive = i % 2 == 0;
            var words = Enumerable.Range(0, random.Next(3, 9)).Select(_ => Filler[random.Next(Filler.Length)]).ToList();
            var sentiment = positive ? Positive : Negative;
            words.Insert(random.Next(words.Count + 1), sentiment[random.Next(sentiment.Length)]);
            rows.Add(new Row { Text = string.Join(' ', words), Label = positive });
        }
        return rows;
    }
}
