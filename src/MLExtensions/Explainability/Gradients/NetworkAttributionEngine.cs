using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Explainability;

/// <summary>
/// Gradient methods on one of this library's networks. The explained space is what the network reads per row: the raw
/// feature vector (the MLP's standardizer is inside the network, so gradients are taken with respect to the raw column),
/// the raw C×H×W pixels (preprocessing is inside the network too), or, for text, the word-embedding output.
/// </summary>
internal sealed class NetworkAttributionEngine : IAttributionEngine
{
    private readonly NetworkTransformerBase _network;
    private readonly ExplanationOptions _options;
    private readonly Tensor? _references;   // [R, D] (vector networks; the baseline row for IG and saliency is _baseline)
    private readonly Tensor? _baseline;     // [1, D]
    private readonly DeepLiftRescale? _rescale;
    private readonly ConcurrentDictionary<int, double> _expectedOutputs = new();

    public NetworkAttributionEngine(NetworkTransformerBase network, ExplanationOptions options, float[][] references, float[]? baseline)
    {
        _network = network;
        _options = options;
        Outputs = ModelOutputs.FromNetwork(network);
        Outputs.ValidateTarget(options.TargetClass);
        IsText = network is TextClassifierTransformer;
        if (!IsText)
        {
            AttributionSize = references[0].Length;
            _references = torch.tensor(references.SelectMany(r => r).ToArray(), new long[] { references.Length, AttributionSize });
            _baseline = torch.tensor(baseline!, new long[] { 1, AttributionSize });
        }
        if (options.Method == ExplanationMethod.DeepLiftShap)
            _rescale = DeepLiftRescale.Attach(network.Network);
    }

    public bool IsText { get; }

    public int AttributionSize { get; }

    public bool HasTokens => IsText;

    public ModelOutputs Outputs { get; }

    public ModelOutputs OutputsFor(DataViewSchema schema) => Outputs;

    public IEnumerable<string> InputColumns(DataViewSchema schema) => _network.NetworkInputColumns;

    public void Validate(DataViewSchema schema) => _network.CreateNetworkInput(new ExplainPredictionsEstimator.EmptyRowOf(schema));

    public Func<RowExplanation> CreateRowExplainer(DataViewRow row)
    {
        var input = _network.CreateNetworkInput(row);
        return () =>
        {
            // One generator per row, seeded by the seed and the row position: the same row gets the same explanation in any cursor.
            var random = new Random(Seeds.Derive(_options.Seed, (int)row.Position));
            using var scope = torch.NewDisposeScope();
            var x = input();
            return IsText ? ExplainText(x, random) : ExplainVector(x, random);
        };
    }

    private RowExplanation ExplainVector(Tensor x, Random random)
    {
        int target = Target(x);
        Tensor F(Tensor points) => TargetOutput(_network.Network.call(points), target);
        var result = new RowExplanation { Target = target, Output = Evaluate(F, x) };
        Tensor attributions;
        switch (_options.Method)
        {
            case ExplanationMethod.IntegratedGradients:
                attributions = Smoothed(x, random, noisy => GradientAttribution.IntegratedGradients(F, noisy, _baseline!, _options.Steps));
                result.BaseValue = Evaluate(F, _baseline!);
                break;
            case ExplanationMethod.Saliency:
                attributions = Smoothed(x, random, noisy => GradientAttribution.Saliency(F, noisy));
                result.BaseValue = Evaluate(F, _baseline!);
                result.Complete = false;
                break;
            case ExplanationMethod.GradientShap:
                attributions = GradientAttribution.GradientShap(F, x, _references!, _options.SamplesFor(ExplanationMethod.GradientShap, 0), _options.NoiseStandardDeviation, random);
                result.BaseValue = ExpectedOutput(F, target);
                break;
            case ExplanationMethod.DeepLiftShap:
                attributions = DeepLiftShap(points => _network.Network.call(points), x, _references!, target);
                result.BaseValue = ExpectedOutput(F, target);
                break;
            default:
                throw new InvalidOperationException($"{_options.Method} is not a gradient method.");
        }
        result.Attributions = attributions.reshape(-1).data<float>().ToArray();
        return result;
    }

    private RowExplanation ExplainText(Tensor packed, Random random)
    {
        var text = (TextClassifierTransformer)_network;
        var encoder = text.Classifier.Encoder;
        int target = Target(packed);
        var ids = packed.select(1, 0);
        Tensor words, baseline;
        using (torch.no_grad())
        {
            words = encoder.LookupWordEmbeddings(ids);
            // The baseline is the padding token's embedding at every position (positions and token types stay as they are).
            baseline = encoder.LookupWordEmbeddings(torch.full_like(ids, text.Tokenizer.PadId));
        }
        Tensor Logits(Tensor points)
        {
            using var replaced = encoder.ReplaceWordEmbeddings(points);
            return _network.Network.call(packed.expand(points.shape[0], -1, -1));
        }
        Tensor F(Tensor points) => TargetOutput(Logits(points), target);
        var result = new RowExplanation { Target = target, Output = Evaluate(F, words), BaseValue = Evaluate(F, baseline) };
        Tensor attributions = _options.Method switch
        {
            ExplanationMethod.IntegratedGradients => Smoothed(words, random, noisy => GradientAttribution.IntegratedGradients(F, noisy, baseline, _options.Steps)),
            ExplanationMethod.Saliency => Smoothed(words, random, noisy => GradientAttribution.Saliency(F, noisy)),
            ExplanationMethod.GradientShap => GradientAttribution.GradientShap(F, words, baseline, _options.SamplesFor(ExplanationMethod.GradientShap, 0), _options.NoiseStandardDeviation, random),
            // The padding baseline is the one reference; the rule is exact for GELU and the output, approximate through
            // the attention products and LayerNorm (see DeepLiftRescale), so ConvergenceDelta is not 0 here.
            ExplanationMethod.DeepLiftShap => DeepLiftShap(Logits, words, baseline, target),
            _ => throw new InvalidOperationException($"{_options.Method} is not available for text."),
        };
        result.Complete = _options.Method != ExplanationMethod.Saliency;
        // Per word piece: the attribution summed over the embedding dimension.
        result.Attributions = attributions.sum(-1).reshape(-1).data<float>().ToArray();
        var vocabulary = text.Tokenizer.Vocabulary;
        result.Tokens = ids.reshape(-1).data<long>().ToArray().Select(id => vocabulary[(int)id]).ToArray();
        return result;
    }

    /// <summary>Attributions averaged over noisy copies of the row (SmoothGrad) when NoiseStandardDeviation &gt; 0.</summary>
    private Tensor Smoothed(Tensor x, Random random, Func<Tensor, Tensor> attribute)
    {
        if (_options.NoiseStandardDeviation == 0)
            return attribute(x);
        int copies = _options.SamplesFor(_options.Method, 0);
        var total = torch.zeros_like(x);
        for (int i = 0; i < copies; i++)
            total.add_(attribute(x + GradientAttribution.Noise(x.shape, _options.NoiseStandardDeviation, random)));
        return total / copies;
    }

    // shap's DeepExplainer: the row against every reference at once; attribution = mean over references of multiplier × (x − r).
    private Tensor DeepLiftShap(Func<Tensor, Tensor> logitsOf, Tensor x, Tensor references, int target)
    {
        long count = references.shape[0];
        var batch = torch.cat(new[] { x.expand(references.shape), references }, 0);
        Tensor F(Tensor points)
        {
            var logits = logitsOf(points);
            return RescaledTarget(logits.narrow(0, 0, count), logits.narrow(0, count, count).detach(), target);
        }
        Tensor gradients;
        using (_rescale!.Activate())
            gradients = GradientAttribution.Gradient(F, batch).narrow(0, 0, count);
        return (gradients * (x - references)).mean(new long[] { 0 }, keepdim: true);
    }

    /// <summary>
    /// The explained output for DeepLIFT. Multiclass: the softmax probability of the target, with multipliers for the
    /// logits from the softmax's gradient integrated along the straight path from the reference's logits (16 Gauss–Legendre
    /// points), rescaled to give exactly Δp; so the rule is exact for the softmax as the rescale rule is for element-wise units.
    /// </summary>
    private Tensor RescaledTarget(Tensor logits, Tensor referenceLogits, int target)
    {
        if (!Outputs.IsMulticlass)
            return TargetOutput(logits, target);
        var difference = logits.detach() - referenceLogits;
        var (nodes, weights) = GaussLegendre.Unit(16);
        var multipliers = torch.zeros_like(difference);
        for (int i = 0; i < nodes.Length; i++)
        {
            var p = torch.softmax(referenceLogits + difference * nodes[i], 1);
            var pt = p.narrow(1, target, 1);
            var gradient = -pt * p;
            gradient.select(1, target).add_(pt.squeeze(1));
            multipliers.add_(gradient * weights[i]);
        }
        var p1 = torch.softmax(logits.detach(), 1).select(1, target);
        var p0 = torch.softmax(referenceLogits, 1).select(1, target);
        var linear = (multipliers * difference).sum(1);
        var scale = torch.where(linear.abs() > 1e-12, (p1 - p0) / torch.where(linear.abs() > 1e-12, linear, torch.ones_like(linear)), torch.ones_like(linear));
        multipliers = (multipliers * scale.unsqueeze(1)).detach();
        return p0 + ((logits - referenceLogits) * multipliers).sum(1);
    }

    /// <summary>The explained output: the target's probability (multiclass), the logit of the target class (binary: −logit for the negative class), the prediction.</summary>
    private Tensor TargetOutput(Tensor logits, int target) =>
        Outputs.IsMulticlass ? torch.softmax(logits, 1).select(1, target)
        : Outputs.IsBinary && target == 0 ? -logits.select(1, 0)
        : logits.select(1, 0);

    private int Target(Tensor x)
    {
        if (_options.TargetClass is { } target)
            return target;
        if (!Outputs.IsMulticlass)
            return Outputs.DefaultTarget(ReadOnlySpan<float>.Empty);
        using var noGrad = torch.no_grad();
        return (int)_network.Network.call(x).argmax(1).item<long>();
    }

    private static double Evaluate(Func<Tensor, Tensor> f, Tensor points)
    {
        using var noGrad = torch.no_grad();
        return f(points).mean().item<float>();
    }

    private double ExpectedOutput(Func<Tensor, Tensor> f, int target) =>
        _expectedOutputs.GetOrAdd(target, _ => Evaluate(f, _references!));

    public void Dispose()
    {
        _rescale?.Dispose();
        _references?.Dispose();
        _baseline?.Dispose();
    }
}
