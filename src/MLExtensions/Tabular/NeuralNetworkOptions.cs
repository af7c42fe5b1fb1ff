using MLExtensions.Core;

namespace MLExtensions.Tabular;

/// <summary>Nonlinearities for hidden layers.</summary>
public enum Activation
{
    /// <summary>max(0, x).</summary>
    ReLU,

    /// <summary>x for x &gt; 0, slope × x otherwise (<see cref="NeuralNetworkOptions.LeakyReLUSlope"/>).</summary>
    LeakyReLU,

    /// <summary>Gaussian error linear unit (exact, erf-based).</summary>
    GELU,

    /// <summary>Hyperbolic tangent.</summary>
    Tanh,

    /// <summary>Logistic sigmoid.</summary>
    Sigmoid,
}

/// <summary>How input features are scaled inside the network.</summary>
public enum FeatureScaling
{
    /// <summary>Standardize each feature with the training data's mean and standard deviation (stored in the model).</summary>
    Standardize,

    /// <summary>Use features as given (normalize them upstream, e.g. with <c>NormalizeMinMax</c>).</summary>
    None,
}

/// <summary>
/// Options of the multi-layer perceptron trainers (<c>NeuralNetwork</c> on the regression, binary and
/// multiclass catalogs). Architecture settings are listed first; training settings come from
/// <see cref="NetworkTrainerOptions"/>. The defaults are meant to work without tuning on small tabular data.
/// </summary>
public sealed class NeuralNetworkOptions : NetworkTrainerOptions
{
    /// <summary>Creates options with defaults tuned for small tabular data sets.</summary>
    public NeuralNetworkOptions()
    {
        Epochs = 200;
        BatchSize = 32;
        Optimizer.LearningRate = 3e-3;
        EarlyStopping.Patience = 20;
    }

    /// <summary>Name of the label column. Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Name of the feature column, a known-size vector of Single. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>Width of each hidden layer, each ≥ 1; empty gives a linear model. Default [64, 64].</summary>
    public int[] HiddenLayers { get; set; } = { 64, 64 };

    /// <summary>Activation of every hidden layer unless <see cref="LayerActivations"/> says otherwise. Default ReLU.</summary>
    public Activation Activation { get; set; } = Activation.ReLU;

    /// <summary>Optional activation per hidden layer (same length as <see cref="HiddenLayers"/>). Default null.</summary>
    public Activation[]? LayerActivations { get; set; }

    /// <summary>Negative slope of <see cref="Tabular.Activation.LeakyReLU"/>, in [0, 1). Default 0.01.</summary>
    public double LeakyReLUSlope { get; set; } = 0.01;

    /// <summary>Dropout after each hidden layer, in [0, 1). Default 0.1.</summary>
    public double Dropout { get; set; } = 0.1;

    /// <summary>Batch normalization after each hidden linear layer. Default false.</summary>
    public bool BatchNormalization { get; set; }

    /// <summary>Input scaling. Default <see cref="FeatureScaling.Standardize"/>.</summary>
    public FeatureScaling FeatureScaling { get; set; } = FeatureScaling.Standardize;

    /// <summary>Regression loss. Default mean squared error.</summary>
    public RegressionLossKind RegressionLoss { get; set; } = RegressionLossKind.MeanSquaredError;

    /// <summary>Threshold of the Huber loss, &gt; 0. Default 1.</summary>
    public double HuberDelta { get; set; } = 1.0;

    /// <summary>Label smoothing of the multiclass cross-entropy, in [0, 1). Default 0.</summary>
    public double LabelSmoothing { get; set; }

    /// <summary>What to do with NaN or infinite features during training. Default <see cref="InvalidFeatureHandling.Throw"/>.</summary>
    public InvalidFeatureHandling InvalidFeatures { get; set; } = InvalidFeatureHandling.Throw;

    /// <summary>The activation of hidden layer <paramref name="layer"/>.</summary>
    public Activation ActivationOf(int layer) => LayerActivations is { } per ? per[layer] : Activation;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check.NotEmpty(LabelColumnName, nameof(LabelColumnName));
        Check.NotEmpty(FeatureColumnName, nameof(FeatureColumnName));
        _ = HiddenLayers ?? throw new ArgumentNullException(nameof(HiddenLayers));
        for (int i = 0; i < HiddenLayers.Length; i++)
        {
            if (HiddenLayers[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(HiddenLayers), HiddenLayers[i], $"HiddenLayers[{i}] must be ≥ 1; found {HiddenLayers[i]}.");
        }
        if (LayerActivations is not null && LayerActivations.Length != HiddenLayers.Length)
            throw new ArgumentOutOfRangeException(nameof(LayerActivations), LayerActivations.Length,
                $"LayerActivations must have one entry per hidden layer ({HiddenLayers.Length}); found {LayerActivations.Length}.");
        Check.InRange(LeakyReLUSlope, 0, 0.999999, nameof(LeakyReLUSlope), "in [0, 1)");
        Check.InRange(Dropout, 0, 0.999999, nameof(Dropout), "in [0, 1)");
        Check.Positive(HuberDelta, nameof(HuberDelta));
        Check.InRange(LabelSmoothing, 0, 0.999999, nameof(LabelSmoothing), "in [0, 1)");
    }
}
