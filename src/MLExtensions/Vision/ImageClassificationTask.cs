using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// The training task of image classifiers: augmentation of raw training images (training mode only),
/// cross-entropy, accuracy, and parameter groups that leave frozen stages out and give unfrozen backbone
/// stages their own learning-rate factor.
/// </summary>
internal sealed class ImageClassificationTask : SupervisedTask
{
    private readonly ImageClassifierNetwork _network;
    private readonly ImageAugmenter? _augmenter;
    private readonly double _backboneFactor;

    public ImageClassificationTask(ImageClassifierNetwork network, ImageAugmenter? augmenter, double labelSmoothing, double backboneFactor)
        : base(network, new CrossEntropyLoss(labelSmoothing), PredictionTask.MulticlassClassification)
    {
        _network = network;
        _augmenter = augmenter;
        _backboneFactor = backboneFactor;
    }

    /// <summary>What the network received in the last <see cref="Forward"/> (after augmentation); lets a teacher see the same images.</summary>
    internal Tensor? LastNetworkInput { get; private set; }

    public override Tensor Forward(Batch batch)
    {
        var x = batch.Inputs[0];
        if (_augmenter is not null && _network.training)
        {
            var p = _network.Preprocess;
            x = _augmenter.Apply(x.reshape(-1, p.Channels, p.Height, p.Width));
        }
        LastNetworkInput = x;
        return _network.call(x);
    }

    public override IReadOnlyList<ParameterGroup> ParameterGroups()
    {
        var groups = new List<ParameterGroup> { new(_network.HeadParameters().Where(p => p.requires_grad).ToList()) };
        var head = new HashSet<TorchSharp.Modules.Parameter>(_network.HeadParameters(), ReferenceEqualityComparer.Instance);
        var backbone = _network.TrainableBackboneParameters().Where(p => !head.Contains(p)).ToList();
        if (backbone.Count > 0)
            groups.Add(new ParameterGroup(backbone, _backboneFactor));
        return groups;
    }
}
