using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;

using MLExtensions.Core.Internals;

namespace MLExtensions;

/// <summary>MLExtensions trainers on <c>mlContext.MulticlassClassification.Trainers</c>.</summary>
public static class MulticlassClassificationCatalogExtensions
{
    /// <summary>A multi-layer perceptron that predicts one of K classes from a feature vector.</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">All settings; see <see cref="NeuralNetworkOptions"/>.</param>
    /// <remarks>
    /// Input: <c>Features</c> (known-size vector of Single), <c>Label</c> (key type; use <c>MapValueToKey</c>).
    /// Output: <c>Score</c> (class probabilities, slot names = class names for text labels), <c>PredictedLabel</c>
    /// (key; follow with <c>MapKeyToValue</c> to get the original value). Exportable to ONNX: yes — <c>mlContext.Model.ExportToOnnx</c> (the network alone), <c>mlContext.Model.ConvertToOnnx</c> (whole pipelines), <c>mlContext.Model.ToOnnxRuntime</c>; see docs/onnx.md.
    /// See samples/MLExtensions.Samples for a runnable example.
    /// </remarks>
    public static NeuralNetworkTrainer NeuralNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, NeuralNetworkOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(options);
        return new NeuralNetworkTrainer(catalog.GetEnvironment(), options, PredictionTask.MulticlassClassification);
    }

    /// <summary>A multi-layer perceptron for multiclass classification with the common settings.</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The label column (key type).</param>
    /// <param name="featureColumnName">The feature column (known-size vector of Single).</param>
    /// <param name="hiddenLayers">Width of each hidden layer; null keeps the default [64, 64].</param>
    /// <param name="epochs">Maximum epochs (early stopping may end sooner).</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="batchSize">Rows per step.</param>
    public static NeuralNetworkTrainer NeuralNetwork(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string featureColumnName = DefaultColumnNames.Features,
        int[]? hiddenLayers = null, int epochs = 200, double learningRate = 3e-3, int batchSize = 32) =>
        catalog.NeuralNetwork(NeuralNetworkOptionsFactory.Create(labelColumnName, featureColumnName, hiddenLayers, epochs, learningRate, batchSize));

    /// <summary>A convolutional image classifier, trained from scratch or fine-tuned from pretrained weights.</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">All settings; see <see cref="ImageClassifierOptions"/>.</param>
    /// <remarks>
    /// Input: an image column (<c>MLImage</c>, or a Single/Byte pixel vector in C×H×W order with the shape declared in the
    /// options) and a key-typed <c>Label</c>. Output: <c>Score</c> (class probabilities) and <c>PredictedLabel</c> (key).
    /// Normalization, resizing and gray→RGB happen inside the network. Exportable to ONNX: yes — <c>mlContext.Model.ExportToOnnx</c> (the network alone), <c>mlContext.Model.ConvertToOnnx</c> (whole pipelines, pixel-vector inputs only: ML.NET cannot export MLImage columns), <c>mlContext.Model.ToOnnxRuntime</c>; see docs/onnx.md.
    /// See samples/MLExtensions.Samples (sample "vision").
    /// </remarks>
    public static ImageClassifierTrainer ImageClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ImageClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(options);
        return new ImageClassifierTrainer(catalog.GetEnvironment(), options);
    }

    /// <summary>A convolutional image classifier with the common settings.</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The label column (key type).</param>
    /// <param name="imageColumnName">The image column (MLImage, or a pixel vector; for vectors use the options overload to declare the shape).</param>
    /// <param name="architecture">The network.</param>
    /// <param name="epochs">Maximum epochs (early stopping may end sooner).</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="batchSize">Images per step.</param>
    public static ImageClassifierTrainer ImageClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string imageColumnName = "Image",
        ImageArchitecture architecture = ImageArchitecture.DefaultCnn, int epochs = 20, double learningRate = 1e-3, int batchSize = 64)
    {
        var options = new ImageClassifierOptions
        {
            LabelColumnName = labelColumnName,
            ImageColumnName = imageColumnName,
            Architecture = architecture,
            Epochs = epochs,
            BatchSize = batchSize,
        };
        options.Optimizer.LearningRate = learningRate;
        return catalog.ImageClassifier(options);
    }

    /// <summary>A text classifier that fine-tunes a BERT-family encoder (all-MiniLM-L6-v2 by default, shipped offline).</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">All settings; see <see cref="TextClassifierOptions"/>.</param>
    /// <remarks>
    /// Input: a text column (and optionally a second one for sentence pairs) and a key-typed <c>Label</c>.
    /// Output: <c>Score</c> (class probabilities) and <c>PredictedLabel</c> (key). Vocabulary, configuration and weights are
    /// saved in the model. Exportable to ONNX: the network alone — <c>mlContext.Model.ExportToOnnx</c> (token-id inputs; tokenization stays outside) and <c>mlContext.Model.ToOnnxRuntime</c>; not through <c>ConvertToOnnx</c>. See docs/onnx.md. See samples/MLExtensions.Samples (sample "text").
    /// </remarks>
    public static TextClassifierTrainer TextClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, TextClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(options);
        return new TextClassifierTrainer(catalog.GetEnvironment(), options, PredictionTask.MulticlassClassification);
    }

    /// <summary>A text classifier with the common settings.</summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The label column (key type).</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="secondTextColumnName">Optional second text column for sentence pairs.</param>
    /// <param name="epochs">Epochs (early stopping may end sooner).</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="batchSize">Texts per step.</param>
    /// <param name="maxLength">Longest token sequence; longer texts are truncated.</param>
    public static TextClassifierTrainer TextClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string textColumnName = "Text", string? secondTextColumnName = null,
        int epochs = 3, double learningRate = 5e-5, int batchSize = 16, int maxLength = 128) =>
        catalog.TextClassifier(TextClassifierOptionsFactory.Create(labelColumnName, textColumnName, secondTextColumnName, epochs, learningRate, batchSize, maxLength));

    /// <summary>
    /// Knowledge distillation: trains a small student network (an MLP, a CNN or a small transformer encoder, chosen by
    /// <see cref="DistillationOptions.Student"/>, or from the teacher and the data when it is null) to imitate a fitted <paramref name="teacher"/>.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="teacher">Any fitted transformer (or pipeline) producing a Score column for the same classes as the student's label:
    /// a network of this library (its logits are used), an ML.NET trainer such as LightGbm, or an ONNX model.</param>
    /// <param name="options">Student, temperature, alpha and the optional extra transfer methods; see <see cref="DistillationOptions"/>.</param>
    /// <remarks>
    /// Input: the student's columns and label (key type); rows with a missing label still learn from the teacher.
    /// Output: the student trainer's ordinary transformer (Score, PredictedLabel).
    /// </remarks>
    public static DistillationTrainer Distill(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ITransformer teacher, DistillationOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(options);
        return new DistillationTrainer(catalog.GetEnvironment(), teacher, options, PredictionTask.MulticlassClassification);
    }
}
