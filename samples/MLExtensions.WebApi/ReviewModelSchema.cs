using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.WebApi;

/// <summary>What a model must look like to be served by this sample: a binary classifier of the text column <c>Text</c>.</summary>
public static class ReviewModelSchema
{
    /// <summary>Throws, naming the column and what was found, when the model does not read <c>Text</c> or does not
    /// produce ML.NET's binary classification columns.</summary>
    /// <exception cref="InvalidOperationException">The model does not fit.</exception>
    public static void Validate(ITransformer model, DataViewSchema inputSchema)
    {
        var text = inputSchema.GetColumnOrNull(nameof(ReviewInput.Text));
        if (text is null)
            throw new InvalidOperationException($"the model's input has no column 'Text' (it has: {string.Join(", ", inputSchema.Select(c => c.Name))}); " +
                                                "this service sends each review in a text column named 'Text'.");
        if (text.Value.Type is not TextDataViewType)
            throw new InvalidOperationException($"the model's input column 'Text' is {text.Value.Type}; expected text (String).");
        var output = model.GetOutputSchema(inputSchema);
        Expect(output, nameof(ReviewPrediction.PredictedLabel), BooleanDataViewType.Instance);
        Expect(output, nameof(ReviewPrediction.Probability), NumberDataViewType.Single);
        Expect(output, nameof(ReviewPrediction.Score), NumberDataViewType.Single);
    }

    private static void Expect(DataViewSchema output, string name, DataViewType type)
    {
        var column = output.GetColumnOrNull(name);
        if (column is null)
            throw new InvalidOperationException($"the model produces no column '{name}'; expected a binary classifier " +
                                                "(PredictedLabel Boolean, Probability and Score Single), e.g. BinaryClassification.Trainers.TextClassifier.");
        if (!column.Value.Type.Equals(type))
            throw new InvalidOperationException($"the model's output column '{name}' is {column.Value.Type}; expected {type}.");
    }
}
