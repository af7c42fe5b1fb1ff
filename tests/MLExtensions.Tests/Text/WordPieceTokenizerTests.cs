using MLExtensions.Text;
using Xunit;

namespace MLExtensions.Tests.Text;

public class WordPieceTokenizerTests
{
    private static readonly WordPieceTokenizer Tokenizer = new(TinyText.Vocabulary, lowerCase: true);

    private static int Id(string piece) => TinyText.Vocabulary.ToList().IndexOf(piece);

    [Fact]
    public void EncodesKnownWordsWordPiecesAndUnknownsAgainstTheVocabulary()
    {
        var encoded = Tokenizer.Encode("The Coffee was UNTASTY!", null, 32);
        Assert.Equal(new[] { Id("[CLS]"), Id("the"), Id("coffee"), Id("was"), Id("un"), Id("##tasty"), Id("!"), Id("[SEP]") }, encoded.Ids);
        Assert.All(encoded.TypeIds, t => Assert.Equal(0, t));
        Assert.Equal(new[] { Id("[CLS]"), Id("[UNK]"), Id("[SEP]") }, Tokenizer.Encode("zebra", null, 32).Ids);
    }

    [Fact]
    public void CaseIsKeptWhenTheModelIsCased()
    {
        var cased = new WordPieceTokenizer(TinyText.Vocabulary, lowerCase: false);
        Assert.Equal(new[] { Id("[CLS]"), Id("[UNK]"), Id("coffee"), Id("[SEP]") }, cased.Encode("The coffee", null, 32).Ids);
    }

    [Fact]
    public void PairsGetSeparatorsAndTokenTypes()
    {
        var encoded = Tokenizer.Encode("great tea", "stale box", 32);
        Assert.Equal(new[] { Id("[CLS]"), Id("great"), Id("tea"), Id("[SEP]"), Id("stale"), Id("box"), Id("[SEP]") }, encoded.Ids);
        Assert.Equal(new[] { 0, 0, 0, 0, 1, 1, 1 }, encoded.TypeIds);
    }

    [Fact]
    public void LongTextsAreTruncatedToTheMaximumLength()
    {
        string text = string.Join(' ', Enumerable.Repeat("coffee", 50));
        var single = Tokenizer.Encode(text, null, 10);
        Assert.Equal(10, single.Length);
        Assert.Equal(Id("[SEP]"), single.Ids[^1]);

        // Pairs are truncated longest-first: the long text loses pieces until both fit.
        var pair = Tokenizer.Encode(text, "great tea", 12);
        Assert.Equal(12, pair.Length);
        Assert.Equal(3, pair.TypeIds.Count(t => t == 1)); // "great", "tea", [SEP] survive
    }

    [Fact]
    public void NullAndEmptyTextGiveOnlyTheSpecialTokens()
    {
        Assert.Equal(new[] { Id("[CLS]"), Id("[SEP]") }, Tokenizer.Encode(null, null, 16).Ids);
        Assert.Equal(new[] { Id("[CLS]"), Id("[SEP]") }, Tokenizer.Encode("", null, 16).Ids);
    }

    [Fact]
    public void RejectsAVocabularyWithoutBertSpecialTokens()
    {
        var e = Assert.Throws<ArgumentException>(() => new WordPieceTokenizer(new[] { "a", "b" }, true));
        Assert.StartsWith("The vocabulary has no '[CLS]' token; it is not a BERT WordPiece vocabulary.", e.Message);
    }
}
