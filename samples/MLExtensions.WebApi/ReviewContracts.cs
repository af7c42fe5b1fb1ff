using Microsoft.ML.Data;

namespace MLExtensions.WebApi;

/// <summary>The model's input row: one review in the column <c>Text</c>.</summary>
public sealed class ReviewInput
{
    /// <summary>The review.</summary>
    public string Text { get; set; } = "";
}

/// <summary>The model's output row: ML.NET's binary classification columns.</summary>
public sealed class ReviewPrediction
{
    /// <summary>True when the model predicts the positive class ("great").</summary>
    public bool PredictedLabel { get; set; }

    /// <summary>Calibrated probability of the positive class.</summary>
    public float Probability { get; set; }

    /// <summary>The raw score (logit).</summary>
    public float Score { get; set; }
}

/// <summary>The JSON the <c>/predict</c> endpoint returns.</summary>
/// <param name="Label">The predicted class: true for the positive class.</param>
/// <param name="Probability">Probability of the positive class.</param>
/// <param name="Score">The raw score.</param>
/// <param name="ModelVersion">Which load of the model file answered: 1 for the model loaded at start-up, +1 per reload.</param>
public sealed record PredictResponse(bool Label, float Probability, float Score, int ModelVersion);
