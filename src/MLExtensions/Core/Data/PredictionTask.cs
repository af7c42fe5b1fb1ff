namespace MLExtensions.Core;

/// <summary>What a network predicts, which decides the label type it trains on and the columns it outputs.</summary>
public enum PredictionTask
{
    /// <summary>One real number; label <c>Single</c>; output Score.</summary>
    Regression,

    /// <summary>Two classes; label <c>Boolean</c> (or <c>Single</c> 0/1); outputs Score (logit), Probability, PredictedLabel.</summary>
    BinaryClassification,

    /// <summary>K ≥ 2 classes; label a key type with known count; outputs Score (class probabilities) and PredictedLabel (key).</summary>
    MulticlassClassification,
}
