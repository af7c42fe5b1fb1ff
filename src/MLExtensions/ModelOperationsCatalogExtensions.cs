using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Onnx;
using MLExtensions.Onnx.Export;
using MLExtensions.Onnx.Runtime;

using MLExtensions.Core.Internals;

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
    /// One of the library's fitted networks (from <c>NeuralNetwork</c>, <c>ImageClassifier</c>, <c>TextClassifier</c> or
    /// <c>ZeroShotImageClassifier</c>) or embedding transformers (<c>ClipImageEmbedding</c>, <c>ClipTextEmbedding</c>,
    /// <c>ImageTextEncoder</c>: its image side), or a <c>TransformerChain</c> that contains one: the last such network in the chain is exported, alone — the
    /// chain's other steps (e.g. <c>MapValueToKey</c>, <c>MapKeyToValue</c>, featurizers) are not part of the ONNX
    /// model. Use ML.NET's <c>ConvertToOnnx</c> to export a whole pipeline.
    /// </param>
    /// <param name="inputSchema">The schema of the data <paramref name="model"/> is applied to; checked against what the network reads.</param>
    /// <param name="path">The file to write. It is written atomically: on failure no file (or the previous one) is left.</param>
    /// <remarks>
    /// Inputs: <c>features</c> [batch, n] (MLP); <c>pixels</c> [batch, C·H·W] (image classifier; raw pixel values,
    /// channel-major, preprocessing is inside the graph); <c>input_ids</c>, <c>attention_mask</c>, <c>token_type_ids</c>
    /// [batch, sequence] int64 (text classifier; tokenize outside the graph with the vocabulary stored in the metadata); CLIP and
    /// image/text encoder embeddings: <c>pixels</c> (raw RGB, preprocessing inside) or <c>input_ids</c> (CLIP's BPE ids) in,
    /// <c>embedding</c> [batch, D] (L2-normalized) out — see docs/clip.md. Outputs of the networks: <c>logits</c> [batch, k] and, for classifiers,
    /// <c>probabilities</c> (softmax or sigmoid). The batch (and sequence) dimensions are dynamic. The model's metadata properties hold
    /// the task, class names and a description of the preprocessing. See docs/onnx.md.
    /// </remarks>
    /// <exception cref="ArgumentException"><paramref name="model"/> contains no network of this library, or the schema does not fit it.</exception>
    /// <exception cref="NotSupportedException">The network contains a layer the exporter does not know.</exception>
    /// <exception cref="IOException"><paramref name="path"/> cannot be written (the message names it).</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var network = ExportTarget.Find(model, inputSchema);
        // Build the whole model before touching the file system, so an unsupported network writes nothing.
        var onnx = ExportTarget.Build(network, targetsOnnxRuntime: false);
        AtomicFile.Write(path, stream => onnx.WriteTo(stream));
    }

    /// <summary>
    /// Exports the trained network of <paramref name="model"/> to ONNX (as <see cref="ExportToOnnx"/> does, float) and
    /// returns a model that scores it with ONNX Runtime instead of TorchSharp, with the same input and output columns.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">
    /// One of the library's fitted networks — then an <see cref="OnnxNetworkTransformer"/> is returned —, an embedding
    /// transformer (<c>ClipImageEmbedding</c>, <c>ClipTextEmbedding</c>, <c>ImageTextEncoder</c>) — then an
    /// <see cref="OnnxEmbeddingTransformer"/> adding the same column —, or a <c>TransformerChain</c> containing one: then a chain with the same steps is returned, the last network replaced
    /// by its ONNX Runtime form (nested chains are flattened).
    /// </param>
    /// <param name="intraOpNumThreads">Threads ONNX Runtime uses within one row (0, the default, lets ONNX Runtime decide).</param>
    /// <returns>A savable transformer (<c>mlContext.Model.Save</c>); the ONNX model is stored inside the zip.</returns>
    /// <exception cref="ArgumentException"><paramref name="model"/> contains no network of this library.</exception>
    /// <exception cref="NotSupportedException">The network contains a layer the exporter does not know.</exception>
    public static ITransformer ToOnnxRuntime(this ModelOperationsCatalog catalog, ITransformer model, int intraOpNumThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(model);
        var steps = ExportTarget.Steps(model).ToList();
        int index = steps.FindLastIndex(ExportTarget.IsExportable);
        if (index < 0)
            throw new ArgumentException($"ToOnnxRuntime needs one of MLExtensions' trained networks ({ExportTarget.Supported}), or a TransformerChain containing one; got {ExportTarget.Describe(model)}.", nameof(model));
        var network = steps[index];
        // Only ONNX Runtime will run this graph, so it may use ONNX Runtime's fused operators (e.g. MultiHeadAttention).
        var onnx = ExportTarget.Build(network, targetsOnnxRuntime: true).ToByteArray();
        steps[index] = OnnxRuntimeStep.Create(catalog.GetEnvironment(), network, onnx, intraOpNumThreads);
        return ReferenceEquals(model, network) ? steps[index] : new TransformerChain<ITransformer>(steps.ToArray());
    }

    /// <summary>
    /// Post-training quantization: exports the trained network of <paramref name="model"/> to ONNX, quantizes it (dynamic int8,
    /// static int8 in QDQ form calibrated on <paramref name="calibrationData"/>, or float16; see <see cref="QuantizationOptions"/>)
    /// and returns a model in which an ONNX Runtime-backed <see cref="OnnxNetworkTransformer"/> replaces the network, with the
    /// same input and output columns. Save it with <c>mlContext.Model.Save</c>: the quantized ONNX model is stored in the zip.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">One of the library's fitted networks, or a <c>TransformerChain</c> containing one (the last network is quantized).</param>
    /// <param name="calibrationData">
    /// Representative rows with the model's input columns (the first <see cref="QuantizationOptions.MaxCalibrationRows"/> are used):
    /// static int8 calibrates its activation ranges on them, and every mode compares the quantized model with the float one on them
    /// (with a <c>Label</c> column, accuracy before and after too). The comparison is logged and available through the overload with
    /// a <see cref="QuantizationSummary"/>.
    /// </param>
    /// <param name="options">The quantization mode and its settings.</param>
    /// <exception cref="ArgumentException">No network of this library in <paramref name="model"/>, or no calibration rows.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The calibration data lacks a column the network reads, or has the wrong type (named in the message).</exception>
    /// <exception cref="InvalidOperationException">The network has nothing the chosen mode can quantize.</exception>
    public static ITransformer Quantize(this ModelOperationsCatalog catalog, ITransformer model, IDataView calibrationData, QuantizationOptions options) =>
        catalog.Quantize(model, calibrationData, options, out _);

    /// <summary>As <see cref="Quantize(ModelOperationsCatalog, ITransformer, IDataView, QuantizationOptions)"/>, also returning what was done and how the models compare.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">One of the library's fitted networks, or a <c>TransformerChain</c> containing one.</param>
    /// <param name="calibrationData">Representative rows with the model's input columns.</param>
    /// <param name="options">The quantization mode and its settings.</param>
    /// <param name="summary">File sizes before/after, nodes quantized, and the float-vs-quantized comparison on the calibration rows.</param>
    public static ITransformer Quantize(this ModelOperationsCatalog catalog, ITransformer model, IDataView calibrationData, QuantizationOptions options,
        out QuantizationSummary summary)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        MlNetCompatibility.EnsureCompatible();
        var (quantized, result) = NetworkQuantization.Quantize(catalog.GetEnvironment(), model, calibrationData, options);
        summary = result;
        return quantized;
    }
}
