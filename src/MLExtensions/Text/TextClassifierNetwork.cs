using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// Encoder → pooling → dropout → linear classifier. Input: packed token tensor [N, 3, L] (ids, attention mask,
/// token types; see <see cref="TokenBatchSource.Pack"/>); output: logits [N, outputs]. State-dict keys:
/// <c>encoder.*</c> (Hugging Face BERT names) and <c>classifier.*</c>.
/// </summary>
public sealed class TextClassifierNetwork : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly BertEncoder encoder;
    private readonly SeededDropout dropout;
    private readonly Linear classifier;
#pragma warning restore IDE1006

    /// <summary>Builds the network around <paramref name="encoder"/>.</summary>
    public TextClassifierNetwork(BertEncoder encoder, int outputs, TextPooling pooling, double dropoutRate, Generator? generator) : base(nameof(TextClassifierNetwork))
    {
        this.encoder = encoder;
        Pooling = pooling;
        dropout = new SeededDropout(dropoutRate, generator ?? new Generator(0, CPU));
        classifier = nn.Linear(encoder.Config.HiddenSize, outputs);
        if (generator is not null)
            SeededInitialization.Apply(classifier, generator);
        RegisterComponents();
    }

    /// <summary>The encoder.</summary>
    public BertEncoder Encoder => encoder;

    /// <summary>The pooling.</summary>
    public TextPooling Pooling { get; }

    /// <summary>Splits a packed batch into the encoder's inputs.</summary>
    public static EncoderInput Unpack(Tensor packed) => new(packed.select(1, 0), packed.select(1, 1), packed.select(1, 2));

    /// <summary>One vector per text [N, H].</summary>
    public Tensor Embed(Tensor packed)
    {
        using var scope = torch.NewDisposeScope();
        var input = Unpack(packed);
        var hidden = encoder.call(input);
        var pooled = Pooling == TextPooling.Cls ? hidden.select(1, 0) : BertEncoder.MeanPool(hidden, input.AttentionMask);
        return pooled.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor packed)
    {
        using var scope = torch.NewDisposeScope();
        return classifier.call(dropout.call(Embed(packed))).MoveToOuterDisposeScope();
    }
}
