using MLExtensions.Core.Internals;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// A CLIP model read from disk: a ViT image tower and a text transformer with their projections into one joint
/// space, the learned temperature, and CLIP's tokenizer. Pass it to <c>mlContext.Transforms.ClipImageEmbedding</c>,
/// <c>ClipTextEmbedding</c>, the zero-shot classifier, or the image/text encoder for fine-tuning.
/// </summary>
/// <remarks>
/// The model is used read-only by the transformers made from it (they copy nothing; keep it alive while they are used,
/// or let a saved-and-reloaded model own its own copy). Thread-safe for scoring.
/// </remarks>
public sealed class ClipModel : IImageTextModel, IDisposable
{
    private bool _disposed;

    internal ClipModel(ClipNetwork network, ClipTokenizer tokenizer, string source)
    {
        Network = network;
        Network.eval();
        Tokenizer = tokenizer;
        Source = source;
    }

    /// <summary>The architecture.</summary>
    public ClipConfig Config => Network.Config;

    /// <summary>The tokenizer of the text tower.</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>Where the model was read from (a folder), for messages.</summary>
    public string Source { get; }

    /// <summary>Side of the square images the image tower takes.</summary>
    public int ImageResolution => Config.Vision.ImageSize;

    /// <summary>Size of the joint embedding vectors.</summary>
    public int EmbeddingDimension => Config.ProjectionDim;

    /// <summary>exp(logit_scale): the factor applied to cosine similarities to get CLIP's logits (100 for trained CLIP models).</summary>
    public float LogitScale
    {
        get
        {
            ThrowIfDisposed();
            return MathF.Exp(Network.LogitScale.item<float>());
        }
    }

    internal ClipNetwork Network { get; }

    /// <summary>
    /// Loads a CLIP checkpoint folder from disk (nothing is downloaded):
    /// <list type="bullet">
    /// <item>Hugging Face (<c>CLIPModel.save_pretrained</c>, e.g. a copy of <c>openai/clip-vit-base-patch32</c>): <c>config.json</c>,
    /// <c>model.safetensors</c> or <c>pytorch_model.bin</c>, <c>vocab.json</c>, <c>merges.txt</c>;</item>
    /// <item>OpenAI names (the <c>state_dict()</c> of <c>clip/model.py</c>'s <c>CLIP</c>, saved as <c>openai_state_dict.safetensors</c> or
    /// <c>.pt</c> — not a TorchScript archive): <c>openai_config.json</c> with the <c>CLIP(...)</c> arguments, plus
    /// <c>vocab.json</c> and <c>merges.txt</c>.</item>
    /// </list>
    /// </summary>
    /// <param name="path">The checkpoint folder.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">A required file is missing (named in the message).</exception>
    /// <exception cref="InvalidDataException">The configuration is not a ViT CLIP model, or the weights do not fit it (the tensor is named).</exception>
    public static ClipModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        MlNetCompatibility.EnsureCompatible();
        var checkpoint = ClipCheckpoint.Find(path);
        var tokenizer = checkpoint.ReadTokenizer();
        if (tokenizer.VocabularySize != checkpoint.Config.Text.VocabSize)
            throw new InvalidDataException($"'{checkpoint.Folder}': vocab.json has {tokenizer.VocabularySize} entries but {Path.GetFileName(checkpoint.ConfigPath)} says vocab_size {checkpoint.Config.Text.VocabSize}.");
        TorchNativeLoader.EnsureLoaded();
        var network = new ClipNetwork(checkpoint.Config);
        try
        {
            ClipWeights.LoadInto(network, checkpoint.WeightsPath);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return new ClipModel(network, tokenizer, checkpoint.Folder);
    }

    /// <summary>
    /// Joint-space features of already-normalized images [N, 3, S, S] (CLIP's <c>encode_image</c>; not L2-normalized).
    /// </summary>
    /// <param name="pixelValues">N·3·S·S floats, channel-major, normalized with CLIP's mean and std.</param>
    public float[][] EncodeImages(ReadOnlySpan<float> pixelValues)
    {
        ThrowIfDisposed();
        int s = ImageResolution, size = 3 * s * s;
        if (pixelValues.Length == 0 || pixelValues.Length % size != 0)
            throw new ArgumentException($"Expected a multiple of 3 × {s} × {s} = {size} values; found {pixelValues.Length}.", nameof(pixelValues));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var input = torch.tensor(pixelValues.ToArray()).view(-1, 3, s, s);
        return EmbeddingRows.Of(Network.EncodeImage(input));
    }

    /// <summary>Joint-space features of texts (CLIP's <c>encode_text</c> after tokenization; not L2-normalized).</summary>
    public float[][] EncodeTexts(IReadOnlyList<string?> texts)
    {
        ThrowIfDisposed();
        return EmbeddingRows.OfTexts(texts, t => Network.EncodeText(ClipTextEncoding.Tokens(Tokenizer, t)));
    }

    /// <summary>L2-normalized joint-space embeddings of texts (what <c>ClipTextEmbedding</c> adds).</summary>
    public float[][] EmbedTexts(IReadOnlyList<string?> texts)
    {
        ThrowIfDisposed();
        return EmbeddingRows.OfTexts(texts, t => ClipTextEncoding.Encode(Network, Tokenizer, t));
    }

    /// <summary>A copy of the network that the caller owns (transformers keep their own, so disposing this model does not break them).</summary>
    internal ClipNetwork CopyNetwork()
    {
        ThrowIfDisposed();
        return EmbeddingRows.CopyWeights(Network, new ClipNetwork(Config));
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Releases the network's native memory.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Network.Dispose();
    }
}
