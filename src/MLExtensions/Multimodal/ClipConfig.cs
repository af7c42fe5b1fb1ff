using System.Text.Json.Serialization;

namespace MLExtensions.Multimodal;

/// <summary>The activation of CLIP's feed-forward blocks.</summary>
public enum ClipActivation
{
    /// <summary><c>x·sigmoid(1.702·x)</c>, OpenAI's CLIP models.</summary>
    QuickGelu,

    /// <summary>Exact (erf) GELU, used by some later CLIP-architecture checkpoints.</summary>
    Gelu,
}

/// <summary>How the text tower picks the token whose state becomes the text embedding.</summary>
public enum ClipTextPooling
{
    /// <summary>The position of the largest id (OpenAI's rule, and Hugging Face's for legacy configs with <c>eos_token_id</c> 2): the end token is CLIP's largest id.</summary>
    ArgmaxId,

    /// <summary>The first position holding <see cref="ClipTextConfig.EosTokenId"/> (current Hugging Face rule).</summary>
    FirstEosToken,
}

/// <summary>One pre-LayerNorm transformer stack of CLIP (shared shape of the text and vision configurations).</summary>
public abstract class ClipTowerConfig
{
    /// <summary>Width of the token states.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; set; }

    /// <summary>Width of the feed-forward block.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; set; }

    /// <summary>Number of transformer layers.</summary>
    [JsonPropertyName("num_hidden_layers")] public int Layers { get; set; }

    /// <summary>Number of attention heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int Heads { get; set; }

    /// <summary>Feed-forward activation.</summary>
    [JsonPropertyName("activation")] public ClipActivation Activation { get; set; } = ClipActivation.QuickGelu;

    /// <summary>LayerNorm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; set; } = 1e-5;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid size.</summary>
    public virtual void Validate(string tower)
    {
        Positive(HiddenSize, tower, "hidden_size");
        Positive(IntermediateSize, tower, "intermediate_size");
        Positive(Layers, tower, "num_hidden_layers");
        Positive(Heads, tower, "num_attention_heads");
        if (HiddenSize % Heads != 0)
            throw new ArgumentOutOfRangeException(nameof(Heads), Heads, $"{tower}: hidden_size {HiddenSize} is not divisible by num_attention_heads {Heads}.");
    }

    /// <summary>Throws when <paramref name="value"/> is not positive.</summary>
    protected static void Positive(int value, string tower, string name)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{tower}: {name} must be positive; found {value}.");
    }
}

/// <summary>CLIP's text transformer (Hugging Face <c>CLIPTextConfig</c> names).</summary>
public sealed class ClipTextConfig : ClipTowerConfig
{
    /// <summary>Vocabulary size (49408 for CLIP's BPE).</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 49408;

    /// <summary>Context length (77).</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositions { get; set; } = 77;

    /// <summary>Id of the end token (49407).</summary>
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; set; } = 49407;

    /// <summary>Where the text embedding is read.</summary>
    [JsonPropertyName("pooling")] public ClipTextPooling Pooling { get; set; } = ClipTextPooling.FirstEosToken;

    /// <inheritdoc />
    public override void Validate(string tower)
    {
        base.Validate(tower);
        Positive(VocabSize, tower, "vocab_size");
        Positive(MaxPositions, tower, "max_position_embeddings");
    }
}

/// <summary>CLIP's ViT image tower (Hugging Face <c>CLIPVisionConfig</c> names).</summary>
public sealed class ClipVisionConfig : ClipTowerConfig
{
    /// <summary>Side of the square input image (224 for ViT-B/32).</summary>
    [JsonPropertyName("image_size")] public int ImageSize { get; set; } = 224;

    /// <summary>Side of a square patch (32 for ViT-B/32).</summary>
    [JsonPropertyName("patch_size")] public int PatchSize { get; set; } = 32;

    /// <summary>Input channels (3).</summary>
    [JsonPropertyName("num_channels")] public int Channels { get; set; } = 3;

    /// <summary>Patches per side.</summary>
    [JsonIgnore] public int Grid => ImageSize / PatchSize;

    /// <inheritdoc />
    public override void Validate(string tower)
    {
        base.Validate(tower);
        Positive(ImageSize, tower, "image_size");
        Positive(PatchSize, tower, "patch_size");
        Positive(Channels, tower, "num_channels");
        if (ImageSize % PatchSize != 0)
            throw new ArgumentOutOfRangeException(nameof(PatchSize), PatchSize, $"{tower}: image_size {ImageSize} is not a multiple of patch_size {PatchSize}.");
    }
}

/// <summary>A CLIP model's architecture: the two towers and the joint embedding size.</summary>
public sealed class ClipConfig
{
    /// <summary>The text tower.</summary>
    [JsonPropertyName("text_config")] public ClipTextConfig Text { get; set; } = new();

    /// <summary>The image tower.</summary>
    [JsonPropertyName("vision_config")] public ClipVisionConfig Vision { get; set; } = new();

    /// <summary>Size of the joint embedding space.</summary>
    [JsonPropertyName("projection_dim")] public int ProjectionDim { get; set; } = 512;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        Text.Validate("text_config");
        Vision.Validate("vision_config");
        if (ProjectionDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(ProjectionDim), ProjectionDim, $"projection_dim must be positive; found {ProjectionDim}.");
    }
}
