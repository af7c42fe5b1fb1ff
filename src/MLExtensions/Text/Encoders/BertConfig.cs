using System.Text.Json.Serialization;

namespace MLExtensions.Text;

/// <summary>How token positions are encoded.</summary>
public enum PositionEncoding
{
    /// <summary>Learned position embeddings (BERT and its family; needed for pretrained checkpoints).</summary>
    Learned,

    /// <summary>Fixed sinusoidal encodings (Vaswani et al. 2017), for models trained from scratch.</summary>
    Sinusoidal,
}

/// <summary>
/// The architecture of a BERT-family encoder, with the field names of Hugging Face's <c>config.json</c> so a
/// checkpoint's configuration deserializes directly.
/// </summary>
public sealed class BertConfig
{
    /// <summary>Vocabulary size.</summary>
    [JsonPropertyName("vocab_size")]
    public int VocabSize { get; set; } = 30522;

    /// <summary>Hidden size (embedding width).</summary>
    [JsonPropertyName("hidden_size")]
    public int HiddenSize { get; set; } = 384;

    /// <summary>Number of encoder layers.</summary>
    [JsonPropertyName("num_hidden_layers")]
    public int Layers { get; set; } = 6;

    /// <summary>Attention heads per layer; must divide <see cref="HiddenSize"/>.</summary>
    [JsonPropertyName("num_attention_heads")]
    public int Heads { get; set; } = 12;

    /// <summary>Width of the feed-forward layer.</summary>
    [JsonPropertyName("intermediate_size")]
    public int IntermediateSize { get; set; } = 1536;

    /// <summary>Longest sequence the position embeddings cover.</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositions { get; set; } = 512;

    /// <summary>Number of token types (segments).</summary>
    [JsonPropertyName("type_vocab_size")]
    public int TypeVocabSize { get; set; } = 2;

    /// <summary>LayerNorm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEpsilon { get; set; } = 1e-12;

    /// <summary>Dropout on embeddings and sub-layer outputs.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropout { get; set; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionDropout { get; set; } = 0.1;

    /// <summary>Feed-forward activation; "gelu" (exact) is the BERT default.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenActivation { get; set; } = "gelu";

    /// <summary>Whether the tokenizer lower-cases text (from tokenizer_config.json or the model card; MiniLM: true).</summary>
    [JsonPropertyName("do_lower_case")]
    public bool LowerCase { get; set; } = true;

    /// <summary>
    /// Rank of the word embeddings: 0 (the default, and what checkpoints use) gives each word piece a
    /// <see cref="HiddenSize"/>-wide vector; a value r below <see cref="HiddenSize"/> stores r numbers per word piece plus a
    /// shared r → hidden linear map (as ALBERT factorizes its embeddings). With a 30,522-word vocabulary the table is most of
    /// a small encoder's parameters, so this is how a small student stays wide: e.g. 2 layers × 384 with rank 24 have about a
    /// fifth of MiniLM's parameters, and can start from MiniLM's layers and the best rank-24 approximation of its embeddings.
    /// </summary>
    [JsonPropertyName("word_embedding_rank")]
    public int WordEmbeddingRank { get; set; }

    /// <summary>Position encoding. Checkpoints use <see cref="PositionEncoding.Learned"/>.</summary>
    [JsonPropertyName("position_encoding")]
    public PositionEncoding PositionEncoding { get; set; } = PositionEncoding.Learned;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        Core.Check.Positive(VocabSize, "vocab_size");
        Core.Check.Positive(HiddenSize, "hidden_size");
        Core.Check.Positive(Layers, "num_hidden_layers");
        Core.Check.Positive(Heads, "num_attention_heads");
        Core.Check.Positive(IntermediateSize, "intermediate_size");
        Core.Check.Positive(MaxPositions, "max_position_embeddings");
        Core.Check.Positive(TypeVocabSize, "type_vocab_size");
        if (HiddenSize % Heads != 0)
            throw new ArgumentOutOfRangeException("num_attention_heads", Heads, $"hidden_size {HiddenSize} must be divisible by num_attention_heads {Heads}.");
        if (WordEmbeddingRank < 0 || WordEmbeddingRank >= HiddenSize)
            throw new ArgumentOutOfRangeException("word_embedding_rank", WordEmbeddingRank, $"word_embedding_rank must be 0 (full width) or between 1 and hidden_size − 1 = {HiddenSize - 1}; found {WordEmbeddingRank}.");
        if (HiddenActivation is not ("gelu" or "relu" or "gelu_new"))
            throw new ArgumentOutOfRangeException("hidden_act", HiddenActivation, $"hidden_act must be gelu, gelu_new or relu; found '{HiddenActivation}'.");
    }

    /// <summary>The all-MiniLM-L6-v2 architecture (6 layers, 384 wide, 12 heads, vocabulary 30,522).</summary>
    public static BertConfig MiniLmL6 => new();

    /// <summary>A small encoder for training from scratch.</summary>
    public static BertConfig Small(int vocabSize, int layers = 2, int hidden = 128, int heads = 4, int maxPositions = 512) => new()
    {
        VocabSize = vocabSize,
        Layers = layers,
        HiddenSize = hidden,
        Heads = heads,
        IntermediateSize = 4 * hidden,
        MaxPositions = maxPositions,
        PositionEncoding = PositionEncoding.Sinusoidal,
    };
}
