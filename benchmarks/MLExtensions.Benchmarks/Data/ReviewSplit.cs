namespace MLExtensions.Benchmarks.Data;

/// <summary>
/// The split of the training reviews for the students that add sentence rows to their transfer set: a seeded tenth for
/// validation, held out before the library adds rows, so no sentence of a validation review is trained on.
/// </summary>
internal static class ReviewSplit
{
    /// <summary>A review with a float label: 1 or 0.</summary>
    public sealed class Row
    {
        public string Text { get; set; } = "";

        public float Label { get; set; }
    }

    /// <summary>Labeled reviews (nine tenths, seeded shuffle) and validation reviews (the other tenth).</summary>
    public static (List<Row> Labeled, List<Row> Validation) Split(IReadOnlyList<FineFoodReviews.Row> reviews, int seed)
    {
        var shuffled = reviews.Select(r => new Row { Text = r.Text, Label = r.Label ? 1 : 0 }).ToArray();
        new Random(seed).Shuffle(shuffled);
        int validationCount = shuffled.Length / 10;
        return (shuffled.Skip(validationCount).ToList(), shuffled.Take(validationCount).ToList());
    }
}
