using System.Text.RegularExpressions;

namespace MLExtensions.Distillation;

/// <summary>
/// Plans the unlabeled rows that <see cref="TextDistillationOptions.AddSentences"/>,
/// <see cref="TextDistillationOptions.AddLeaveOneSentenceOut"/> and <see cref="TextDistillationOptions.RecombinedSentenceRows"/>
/// add to a text transfer set: new texts made only of the training texts' own sentences, for the teacher to score.
/// </summary>
/// <remarks>
/// A small labeled set is what limits a distilled student: it soon imitates the teacher on every training text and still
/// disagrees with it on new ones. More texts for the teacher to score close that gap, and sentences of real reviews, alone,
/// in pairs, with one left out or joined with sentences of other texts, are real language in combinations the training set
/// does not hold (unlike masked or replaced word pieces, which drift away from it).
/// </remarks>
internal static partial class SentenceTransferSet
{
    /// <summary>Fewest sentences joined into a recombined text.</summary>
    public const int MinRecombinedSentences = 2;

    /// <summary>Most sentences joined into a recombined text.</summary>
    public const int MaxRecombinedSentences = 4;

    /// <summary>
    /// The derived texts attached to each source text (same order as <paramref name="texts"/>); deterministic for a seed.
    /// A recombined text is attached to a source text picked at random, whose other columns it then shares.
    /// </summary>
    public static List<string>[] Plan(IReadOnlyList<string> texts, TextDistillationOptions options, int seed)
    {
        var random = new Random(seed);
        var sentences = texts.Select(Sentences).ToArray();
        var plan = new List<string>[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            var own = sentences[i];
            var derived = plan[i] = new List<string>();
            if (options.AddSentences && own.Count >= 2)
            {
                derived.AddRange(own);
                for (int s = 0; s + 1 < own.Count; s++)
                    derived.Add(own[s] + " " + own[s + 1]);
            }
            if (options.AddLeaveOneSentenceOut && own.Count >= 3)
            {
                int left = random.Next(own.Count);
                derived.Add(string.Join(" ", own.Where((_, index) => index != left)));
            }
        }

        var withSentences = sentences.Where(s => s.Count > 0).ToArray();
        if (options.RecombinedSentenceRows > 0 && withSentences.Length == 0)
            throw new ArgumentException(
                $"RecombinedSentenceRows is {options.RecombinedSentenceRows}, but no training text has a sentence of three or more words to recombine.");
        for (int r = 0; r < options.RecombinedSentenceRows; r++)
        {
            var picked = new string[random.Next(MinRecombinedSentences, MaxRecombinedSentences + 1)];
            for (int p = 0; p < picked.Length; p++)
            {
                var from = withSentences[random.Next(withSentences.Length)];
                picked[p] = from[random.Next(from.Count)];
            }
            plan[random.Next(texts.Count)].Add(string.Join(" ", picked));
        }
        return plan;
    }

    /// <summary>
    /// The sentences of a text that have three or more words: the text is split after '.', '!' or '?' followed by white space,
    /// and at HTML line breaks (&lt;br /&gt;), which reviews scraped from the web often use between paragraphs.
    /// </summary>
    public static List<string> Sentences(string text) =>
        SentenceBreak().Split(text).Select(s => s.Trim()).Where(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= 3).ToList();

    [GeneratedRegex(@"(?<=[.!?])\s+|<br\s*/?>", RegexOptions.IgnoreCase)]
    private static partial Regex SentenceBreak();
}
