using Google.Protobuf;
using Microsoft.ML;
using MLExtensions.Onnx.Export;

namespace MLExtensions;

/// <summary>ONNX export of the library's trained networks, on <c>mlContext.Model</c>.</summary>
public static class ModelOperationsCatalogExtensions
{
    /// <summary>
    /// Writes the trained network of <paramref name="model"/> as a stand-alone ONNX model (opset 17) that ONNX Runtime,
    /// or any ONNX consumer, can run without ML.NET or TorchSharp.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">
    /// One of the library's fitted networks (from <c>NeuralNetwork</c> or <c>ImageClassifier</c>), or a
    /// <c>TransformerChain</c> that contains one: the last such network in the chain is exported, alone — the
    /// chain's other steps (e.g. <c>MapValueToKey</c>, <c>MapKeyToValue</c>, featurizers) are not part of the ONNX
    /// model. Use ML.NET's <c>ConvertToOnnx</c> to export a whole pipeline.
    /// </param>
    /// <param name="inputSchema">The schema of the data <paramref name="model"/> is applied to; checked against what the network reads.</param>
    /// <param name="path">The file to write. It is written atomically: on failure no file (or the previous one) is left.</param>
    /// <remarks>
    /// Inputs: <c>features</c> [batch, n] (MLP) or <c>pixels</c> [batch, C·H·W] (image classifier; raw pixel values,
    /// channel-major, preprocessing is inside the graph). Outputs: <c>logits</c> [batch, k] and, for classifiers,
    /// <c>probabilities</c> (softmax or sigmoid). The batch dimension is dynamic. The model's metadata properties hold
    /// the task, class names and a description of the preprocessing. See docs/onnx.md.
    /// </remarks>
    /// <exception cref="ArgumentException"><paramref name="model"/> contains no network of this library, or the schema does not fit it.</exception>
    /// <exception cref="NotSupportedException">The network contains a layer the exporter does not know.</exception>
    /// <exception cref="IOException"><paramref name="path"/> cannot be written (the message names it).</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var network = ExportTarget.Find(model, inputSchema);
        // Build the whole model before touching the file system, so an unsupported network writes nothing.
        var onnx = ExportedNetwork.Build(network);
        AtomicFile.Write(path, stream => onnx.WriteTo(stream));
    }
}
