using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// What an image classifier runs: <see cref="ImagePreprocessor"/> then an <see cref="ImageNetwork"/>.
/// State-dict keys: <c>preprocess.*</c> and <c>net.*</c> (the architecture's own, torchvision-style, names).
/// </summary>
/// <remarks>
/// <para>
/// With <see cref="AveragesMirroredView"/> the network scores each image and its left-right mirror in evaluation mode
/// and returns the mean of the two logit vectors (test-time augmentation for networks trained with horizontal flips).
/// Training-mode forward passes never do this, so the loss sees one view per image.
/// </para>
/// <para>
/// Stages marked frozen stay in evaluation mode even when the whole network is put in training mode, so their
/// batch-norm statistics never change while the rest fine-tunes.
/// </para>
/// </remarks>
public sealed class ImageClassifierNetwork : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are state-dict keys
    private readonly ImagePreprocessor preprocess;
    private readonly ImageNetwork net;
#pragma warning restore IDE1006
    private readonly HashSet<nn.Module> _frozen = new(ReferenceEqualityComparer.Instance);

    /// <summary>Combines the preprocessing and the network.</summary>
    /// <param name="preprocess">The fixed preprocessing layer.</param>
    /// <param name="net">The architecture.</param>
    /// <param name="averageMirroredView">Average the logits of each image and its mirror when not training.</param>
    public ImageClassifierNetwork(ImagePreprocessor preprocess, ImageNetwork net, bool averageMirroredView = false) : base(nameof(ImageClassifierNetwork))
    {
        this.preprocess = preprocess;
        this.net = net;
        AveragesMirroredView = averageMirroredView;
        RegisterComponents();
    }

    /// <summary>Whether evaluation-mode outputs are the mean logits of each image and its left-right mirror.</summary>
    public bool AveragesMirroredView { get; }

    /// <summary>The preprocessing layer.</summary>
    public ImagePreprocessor Preprocess => preprocess;

    /// <summary>The architecture.</summary>
    public ImageNetwork Network => net;

    /// <summary>Freezes the first <paramref name="count"/> backbone stages (no gradients, evaluation mode) and unfreezes the rest.</summary>
    public void FreezeStages(int count)
    {
        _frozen.Clear();
        var stages = net.Stages;
        for (int i = 0; i < stages.Count; i++)
        {
            bool frozen = i < count;
            foreach (var p in stages[i].parameters())
                p.requires_grad = !frozen;
            if (frozen)
                _frozen.Add(stages[i]);
        }
        train(training);
    }

    /// <summary>Parameters of the unfrozen backbone stages (not the head).</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> TrainableBackboneParameters() =>
        net.Stages.Where(s => !_frozen.Contains(s)).SelectMany(s => s.parameters()).Where(p => p.requires_grad);

    /// <summary>The head's parameters.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> HeadParameters() => net.Head.parameters();

    /// <inheritdoc />
    public override void train(bool on = true)
    {
        base.train(on);
        foreach (var stage in _frozen)
            stage.eval();
        preprocess.eval();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = preprocess.call(input);
        if (training || !AveragesMirroredView)
            return net.call(x).MoveToOuterDisposeScope();
        // One pass over both views (batch-norm is per-image in evaluation mode, so stacking them changes nothing).
        long n = x.shape[0];
        var logits = net.call(torch.cat(new[] { x, x.flip(3) }, 0));
        return ((logits.narrow(0, 0, n) + logits.narrow(0, n, n)) * 0.5f).MoveToOuterDisposeScope();
    }

    /// <summary>Features from the backbone for raw input (used to cache frozen features).</summary>
    public Tensor ExtractFeatures(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        return net.ExtractFeatures(preprocess.call(input)).MoveToOuterDisposeScope();
    }
}
