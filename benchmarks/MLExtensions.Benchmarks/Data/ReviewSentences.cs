using System.Text.RegularExpressions;

namespace MLExtensions.Benchmarks.Data;

/// <summary>
/// A larger transfer set made of what the training reviews already hold: each sentence of a review, and each pair of adjacent
/// sentences, as an unlabeled row for the teacher to score.
/// </summary>
internal static partial class ReviewSentences
{
    /// <summary>A review with a float label: 1, 0, or NaN for an unlabeled transfer row.</summary>
    public sealed class Row
    {
        public string Text { get; set; } = "";

        public float Label { get; set; }
    }

    /// <summary>
    /// Labeled reviews (nine tenths, seeded shuffle), validation reviews (the other tenth, whose sentences stay out of the transfer
    /// set) and the unlabeled sentences and adjacent sentence pairs of the labeled reviews that have two or more sentences.
    /// </summary>
    public static (List<Row> Labeled, List<Row> Validation, List<Row> Transfer) Split(IReadOnlyList<FineFoodReviews.Row> reviews, int seed)
    {
        var shuffled = reviews.Select(r => new Row { Text = r.Text, Label = r.Label ? 1 : 0 }).ToArray();
        new Random(seed).Shuffle(shuffled);
        int validationCount = shuffled.Length / 10;
        var labeled = shuffled.Skip(validationCount).ToList();
        var transfer = new List<Row>();
        foreach (var review in labeled)
        {
            var sentences = Sentences(review.Text);
            if (sentences.Count < 2)
                continue; // a one-sentence review is already a labeled row
            transfer.AddRange(sentences.Select(s => Unlabeled(s)));
            transfer.AddRange(sentences.Zip(sentences.Skip(1), (a, b) => Unlabeled(a + " " + b)));
        }
        return (labeled, shuffled.Take(validationCount).ToList(), transfer);
    }

    /// <summary>The sentences of a review of three or more words: split after . ! ? and at HTML line breaks.</summary>
    public static List<string> Sentences(string review) =>
        SentenceBreak().Split(review).Select(s => s.Trim()).Where(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= 3).ToList();

    private static Row Unlabeled(string text) => new() { Text = text, Label = float.NaN };

    [GeneratedRegex(@"(?<=[.!?])\s+|<br\s*/?>")]
    private static partial Regex SentenceBreak();
}
