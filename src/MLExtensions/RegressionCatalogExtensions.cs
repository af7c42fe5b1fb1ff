using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;

using MLExtensions.Core.Internals;

namespace MLExtensions;

/// <summary>MLExtensions trainers on <c>mlContext.Regression.Trainers</c>.</summary>
public static class RegressionCatalogExtensions
{
    /// <summary>
    /// A multi-layer perceptron that predicts a real number from a feature vector.
    /// </summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="options">All settings; see <see cref="NeuralNetworkOptions"/>.</param>
    /// <remarks>
    /// Input: <c>Features</c> (known-size vector of Single), <c>Label</c> (Single). Output: <c>Score</c> (Single).
    /// Normalization: built in (standardization). Exportable to ONNX: yes — <c>mlContext.Model.ExportToOnnx</c> (the network alone), <c>mlContext.Model.ConvertToOnnx</c> (whole pipelines), <c>mlContext.Model.ToOnnxRuntime</c>; see docs/onnx.md.
    /// See samples/MLExtensions.Samples for a runnable example.
    /// </remarks>
    public static NeuralNetworkTrainer NeuralNetwork(this RegressionCatalog.RegressionTrainers catalog, NeuralNetworkOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(options);
        return new NeuralNetworkTrainer(catalog.GetEnvironment(), options, PredictionTask.Regression);
    }

    /// <summary>A multi-layer perceptron for regression with the common settings; see <see cref="NeuralNetworkOptions"/> for the rest.</summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="labelColumnName">The label column (Single).</param>
    /// <param name="featureColumnName">The feature column (known-size vector of Single).</param>
    /// <param name="hiddenLayers">Width of each hidden layer; null keeps the default [64, 64].</param>
    /// <param name="epochs">Maximum epochs (early stopping may end sooner).</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="batchSize">Rows per step.</param>
    public static NeuralNetworkTrainer NeuralNetwork(this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        int[]? hiddenLayers = null, int epochs = 200, double learningRate = 3e-3, int batchSize = 32) =>
        catalog.NeuralNetwork(NeuralNetworkOptionsFactory.Create(labelColumnName, featureColumnName, hiddenLayers, epochs, learningRate, batchSize));
}
