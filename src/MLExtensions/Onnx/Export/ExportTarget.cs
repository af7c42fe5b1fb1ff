using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Finds the network to export in what the user passed: one of the library's network transformers (or embedding
/// transformers: CLIP image/text embeddings, the image/text encoder), or a <see cref="TransformerChain{TLastTransformer}"/>
/// containing one (the last such transformer is taken). The input schema is checked against what the network reads,
/// after the chain's earlier steps.
/// </summary>
internal static class ExportTarget
{
    /// <summary>What ExportToOnnx, ToOnnxRuntime and Quantize accept.</summary>
    public const string Supported = "NeuralNetwork, ImageClassifier, TextClassifier, ZeroShotImageClassifier, ClipImageEmbedding, ClipTextEmbedding, ImageTextEncoder";

    /// <summary>True for a step these operations can export: a network transformer or an embedding transformer.</summary>
    public static bool IsExportable(ITransformer step) => step is NetworkTransformerBase || ExportedEmbedding.Supports(step);

    /// <summary>Builds the ONNX model of an exportable step.</summary>
    public static global::Onnx.ModelProto Build(ITransformer step, bool targetsOnnxRuntime) =>
        step is NetworkTransformerBase network ? ExportedNetwork.Build(network, targetsOnnxRuntime) : ExportedEmbedding.Build(step, targetsOnnxRuntime);

    public static ITransformer Find(ITransformer model, DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSchema);
        var steps = Steps(model).ToList();
        int index = steps.FindLastIndex(IsExportable);
        if (index < 0)
            throw new ArgumentException(
                $"ExportToOnnx needs one of MLExtensions' trained networks ({Supported}), or a TransformerChain containing one; got {Describe(model)}. " +
                "To export a whole ML.NET pipeline use mlContext.Model.ConvertToOnnx.", nameof(model));
        var schema = inputSchema;
        for (int i = 0; i < index; i++)
            schema = steps[i].GetOutputSchema(schema);
        var network = steps[index];
        try
        {
            network.GetOutputSchema(schema);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new ArgumentException($"The input schema does not match what the network reads: {e.Message}", nameof(inputSchema), e);
        }
        return network;
    }

    /// <summary>The transformers of <paramref name="model"/> in order, nested chains flattened.</summary>
    public static IEnumerable<ITransformer> Steps(ITransformer model)
    {
        if (model is IEnumerable<ITransformer> chain)
        {
            foreach (var step in chain)
            {
                foreach (var inner in Steps(step))
                    yield return inner;
            }
        }
        else
        {
            yield return model;
        }
    }

    public static string Describe(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? $"a chain of [{string.Join(", ", chain.Select(t => t.GetType().Name))}]" : model.GetType().Name;
}
