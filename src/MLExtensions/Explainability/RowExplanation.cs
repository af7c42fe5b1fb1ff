namespace MLExtensions.Explainability;

/// <summary>The explanation of one row, before it becomes output columns.</summary>
internal sealed class RowExplanation
{
    /// <summary>One value per slot of the explained column (per token for text).</summary>
    public float[] Attributions { get; set; } = Array.Empty<float>();

    /// <summary>The word pieces (gradient methods) or words (KernelSHAP), for text.</summary>
    public string[] Tokens { get; set; } = Array.Empty<string>();

    /// <summary>The explained output at the row (linked, for KernelSHAP with a logit link).</summary>
    public double Output { get; set; }

    /// <summary>The expected output over the references, or the output at the baseline.</summary>
    public double BaseValue { get; set; }

    /// <summary>0-based index of the explained class (0 for one-output models).</summary>
    public int Target { get; set; }

    /// <summary>Whether the attributions should sum to Output − BaseValue (not for saliency maps).</summary>
    public bool Complete { get; set; } = true;

    /// <summary>Σ attributions − (Output − BaseValue); NaN when the method promises no completeness.</summary>
    public float ConvergenceDelta => Complete ? (float)(Attributions.Sum(a => (double)a) - (Output - BaseValue)) : float.NaN;
}

/// <summary>Computes explanations for the rows of one cursor (per-cursor state lives in the returned function).</summary>
internal interface IAttributionEngine : IDisposable
{
    /// <summary>Size of the Attributions vector; 0 when it varies per row (text).</summary>
    int AttributionSize { get; }

    /// <summary>Whether rows carry tokens (text).</summary>
    bool HasTokens { get; }

    /// <summary>What the model predicts (task, classes, PredictedLabel annotations) on data of <paramref name="schema"/>.</summary>
    ModelOutputs OutputsFor(Microsoft.ML.DataViewSchema schema);

    /// <summary>Names of the input columns of <paramref name="schema"/> the explanation reads.</summary>
    IEnumerable<string> InputColumns(Microsoft.ML.DataViewSchema schema);

    /// <summary>Checks the data schema; throws naming the column.</summary>
    void Validate(Microsoft.ML.DataViewSchema schema);

    /// <summary>A function that explains the current row of <paramref name="row"/>.</summary>
    Func<RowExplanation> CreateRowExplainer(Microsoft.ML.DataViewRow row);
}
