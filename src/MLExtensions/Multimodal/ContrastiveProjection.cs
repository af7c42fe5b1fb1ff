using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// The trained part of the LiT encoder: linear maps (no bias) from the cached image and text tower features into the
/// joint space, and CLIP's log temperature <c>logit_scale</c> (initialised at ln(1/0.07), and used clamped to ln 100 as
/// CLIP clamps it). Input rows are [image features | text features]; the output is the batch's image×text logit matrix.
/// </summary>
internal sealed class ContrastiveProjection : nn.Module<Tensor, Tensor>
{
    /// <summary>ln(100): CLIP clamps its temperature so logits are at most 100 × cosine.</summary>
    public static readonly double MaxLogitScale = Math.Log(100);

#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly Linear image_projection;
    private readonly Linear text_projection;
    private readonly Parameter logit_scale;
#pragma warning restore IDE1006
    private readonly Scalar _max = MaxLogitScale;

    /// <param name="imageFeatures">Width of the image tower's features.</param>
    /// <param name="textFeatures">Width of the text tower's features.</param>
    /// <param name="dimension">Size of the joint space (equal to <paramref name="textFeatures"/> when <paramref name="lockText"/>).</param>
    /// <param name="generator">Seeded draws for the initial weights.</param>
    /// <param name="lockText">The text projection is the identity and is not trained (<see cref="ImageTextEncoderOptions.LockTextProjection"/>).</param>
    public ContrastiveProjection(int imageFeatures, int textFeatures, int dimension, Generator generator, bool lockText = false) : base(nameof(ContrastiveProjection))
    {
        if (lockText && dimension != textFeatures)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, $"A locked text projection keeps the text tower's {textFeatures} dimensions.");
        ImageFeatures = imageFeatures;
        TextFeatures = textFeatures;
        Dimension = dimension;
        image_projection = nn.Linear(imageFeatures, dimension, hasBias: false);
        text_projection = nn.Linear(textFeatures, dimension, hasBias: false);
        logit_scale = new Parameter(torch.tensor(MathF.Log(1f / 0.07f)));
        using (torch.no_grad())
        {
            // Seeded draws (the run's generator), scaled as nn.Linear's default init.
            image_projection.weight!.uniform_(-1 / Math.Sqrt(imageFeatures), 1 / Math.Sqrt(imageFeatures), generator);
            text_projection.weight!.uniform_(-1 / Math.Sqrt(textFeatures), 1 / Math.Sqrt(textFeatures), generator);
            if (lockText)
            {
                using var identity = torch.eye(textFeatures);
                text_projection.weight!.copy_(identity);
            }
        }
        // A frozen identity keeps the saved format and the scoring code the same as with a trained projection.
        text_projection.weight!.requires_grad = !lockText;
        RegisterComponents();
    }

    public int ImageFeatures { get; }

    public int TextFeatures { get; }

    /// <summary>Size of the joint space.</summary>
    public int Dimension { get; }

    /// <summary>The image-feature projection (for export).</summary>
    public Linear ImageProjection => image_projection;

    /// <summary>exp(clamped logit_scale), a scalar tensor.</summary>
    public Tensor Scale() => logit_scale.clamp_max(_max).exp();

    /// <summary>Normalized image embeddings of image-tower features.</summary>
    public Tensor ProjectImages(Tensor features) => nn.functional.normalize(image_projection.call(features), 2.0, 1L);

    /// <summary>Normalized text embeddings of text-tower features.</summary>
    public Tensor ProjectTexts(Tensor features) => nn.functional.normalize(text_projection.call(features), 2.0, 1L);

    /// <summary>[B, image + text features] → logits [B images, B texts].</summary>
    public override Tensor forward(Tensor rows)
    {
        using var scope = torch.NewDisposeScope();
        var images = ProjectImages(rows.narrow(1, 0, ImageFeatures));
        var texts = ProjectTexts(rows.narrow(1, ImageFeatures, TextFeatures));
        return Autocast.MatMul(images, texts.t()).mul(Scale()).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Symmetric InfoNCE (CLIP's loss): cross-entropy of each image over the batch's texts and of each text over the images,
/// averaged. Rows whose captions are identical are all correct matches for each other (the target spreads evenly over
/// them), since a batch drawn from few distinct captions would otherwise push equal texts apart.
/// </summary>
internal sealed class ContrastiveTask : ITrainingTask
{
    private readonly nn.Module<Tensor, Tensor> _network;

    /// <param name="network">Rows → the batch's [images, texts] logit matrix (<see cref="ContrastiveProjection"/> or <see cref="ClipContrastiveNetwork"/>).</param>
    public ContrastiveTask(nn.Module<Tensor, Tensor> network) => _network = network;

    public nn.Module Network => _network;

    public Tensor Forward(Batch batch) => _network.call(batch.Inputs[0]);

    public Tensor ComputeLoss(Tensor output, Batch batch)
    {
        using var scope = torch.NewDisposeScope();
        var captions = batch.Targets[0].to(ScalarType.Int64);
        var same = captions.unsqueeze(1).eq(captions.unsqueeze(0)).to(output.dtype);
        var targets = same.div(same.sum(1, keepdim: true)); // symmetric, so it serves both directions
        var imageToText = targets.mul(output.log_softmax(1)).sum(1).mean().neg();
        var textToImage = targets.mul(output.t().log_softmax(1)).sum(1).mean().neg();
        return imageToText.add(textToImage, RootedScalars.One).div(2.0).MoveToOuterDisposeScope();
    }

    public IValidationMetric CreateValidationMetric() => new RetrievalAccuracy();

    public IReadOnlyList<ParameterGroup> ParameterGroups() => new[] { new ParameterGroup(_network.parameters().Where(p => p.requires_grad).ToList()) };

    /// <summary>Share of images whose best-scoring text in the batch has the image's caption.</summary>
    private sealed class RetrievalAccuracy : IValidationMetric
    {
        private long _correct, _count;

        public string Name => "Image→text accuracy";

        public bool HigherIsBetter => true;

        public void Update(Tensor output, Batch batch)
        {
            using var scope = torch.NewDisposeScope();
            var captions = batch.Targets[0].to(ScalarType.Int64);
            var best = captions.index_select(0, output.argmax(1));
            _correct += best.eq(captions).sum().item<long>();
            _count += batch.Count;
        }

        public double Compute() => _count == 0 ? 0 : (double)_correct / _count;
    }
}
