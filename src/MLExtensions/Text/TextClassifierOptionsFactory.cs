namespace MLExtensions.Text;

/// <summary>Builds options from the short catalog overloads, so both overloads end in the same constructor.</summary>
internal static class TextClassifierOptionsFactory
{
    public static TextClassifierOptions Create(string label, string text, string? second, int epochs, double learningRate, int batchSize, int maxLength)
    {
        var options = new TextClassifierOptions
        {
            LabelColumnName = label,
            TextColumnName = text,
            SecondTextColumnName = second,
            Epochs = epochs,
            BatchSize = batchSize,
            MaxLength = maxLength,
        };
        options.Optimizer.LearningRate = learningRate;
        return options;
    }
}
