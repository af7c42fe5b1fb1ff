namespace MLExtensions.Tabular;

/// <summary>Builds options from the short catalog overloads, so both overloads end in the same constructor.</summary>
internal static class NeuralNetworkOptionsFactory
{
    public static NeuralNetworkOptions Create(string labelColumnName, string featureColumnName, int[]? hiddenLayers, int epochs, double learningRate, int batchSize)
    {
        var options = new NeuralNetworkOptions
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Epochs = epochs,
            BatchSize = batchSize,
        };
        if (hiddenLayers is not null)
            options.HiddenLayers = hiddenLayers;
        options.Optimizer.LearningRate = learningRate;
        return options;
    }
}
