using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Vision;
using Onnx;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// The <c>ISaveAsOnnx</c> side of the library's network transformers, so that ML.NET's <c>ConvertToOnnx</c> can export
/// pipelines containing them: the network's nodes go into ML.NET's <see cref="OnnxContext"/>, followed by the same
/// Score / PredictedLabel / Probability columns ML.NET's own trainers emit.
/// </summary>
/// <remarks>
/// MLPs and image classifiers on pixel vectors are supported. Text classifiers are not: ML.NET feeds text columns as
/// strings and ONNX has no WordPiece tokenizer, so <see cref="CanSave"/> is false and ConvertToOnnx reports that the
/// pipeline cannot be converted (export the network alone with <c>ExportToOnnx</c>).
/// </remarks>
internal static class PipelineOnnxExport
{
    /// <summary>Oldest opset the network exporters support in ConvertToOnnx (MaxPool's ceil_mode and dilations need 10).</summary>
    private const int OldestOpset = 10;

    /// <summary>Newest opset the exporters take advantage of (LayerNormalization).</summary>
    private const int NewestOpset = 17;

    public static bool CanSave(NetworkTransformerBase transformer) => InputColumn(transformer) is not null;

    public static void Save(NetworkTransformerBase transformer, OnnxContext ctx, DataViewSchema inputSchema)
    {
        string column = InputColumn(transformer) ?? throw new NotSupportedException($"{transformer.GetType().Name} cannot be saved as part of an ONNX pipeline.");
        var outputColumns = transformer.Outputs.GetColumns(inputSchema);
        if (!ctx.ContainsColumn(column))
        {
            // An earlier step could not export the column this network reads; leave nothing half-declared.
            foreach (var output in outputColumns)
                ctx.RemoveColumn(output.Name, false);
            return;
        }
        var writer = new OnnxContextGraphWriter(ctx, OnnxContextGraphWriter.DetectOpset(ctx, OldestOpset, NewestOpset));
        string x = ctx.GetVariableName(column);
        // Byte pixel columns arrive as uint8; the network computes in float.
        if (inputSchema[column].Type is VectorDataViewType { ItemType: var item } && item != NumberDataViewType.Single)
            x = writer.AddNode("Cast", new[] { x }, column + ".float", NodeAttribute.Of("to", (long)TensorProto.Types.DataType.Float));
        string logits = new ModuleExporter(writer).Export(transformer.Network, x, "network");
        EmitPredictionColumns(ctx, writer, transformer.Outputs, logits);
    }

    /// <summary>Score (softmax probabilities or the raw output), Probability and PredictedLabel, as ML.NET's trainers produce them.</summary>
    private static void EmitPredictionColumns(OnnxContext ctx, OnnxContextGraphWriter writer, PredictionOutputs outputs, string logits)
    {
        switch (outputs.Kind)
        {
            case PredictionTask.MulticlassClassification:
            {
                int k = outputs.ClassCount;
                string score = ctx.AddIntermediateVariable(new VectorDataViewType(NumberDataViewType.Single, k), DefaultColumnNames.Score);
                writer.AddNodeTo("Softmax", new[] { logits }, score, NodeAttribute.Of("axis", 1L));
                // Keys are 1-based uint32: arg-max + 1, kept [batch, 1] like any scalar column.
                string argMax = writer.AddNode("ArgMax", new[] { score }, "argmax", NodeAttribute.Of("axis", 1L), NodeAttribute.Of("keepdims", 1L));
                string plusOne = writer.AddNode("Add", new[] { argMax, writer.AddInitializer("one", new[] { 1L }, new long[] { 1 }) }, "argmax_plus_one");
                string predicted = ctx.AddIntermediateVariable(new KeyDataViewType(typeof(uint), k), DefaultColumnNames.PredictedLabel);
                writer.AddNodeTo("Cast", new[] { plusOne }, predicted, NodeAttribute.Of("to", (long)TensorProto.Types.DataType.Uint32));
                break;
            }
            case PredictionTask.BinaryClassification:
            {
                string score = ctx.AddIntermediateVariable(NumberDataViewType.Single, DefaultColumnNames.Score);
                writer.AddNodeTo("Identity", new[] { logits }, score);
                string probability = ctx.AddIntermediateVariable(NumberDataViewType.Single, DefaultColumnNames.Probability);
                writer.AddNodeTo("Sigmoid", new[] { score }, probability);
                string predicted = ctx.AddIntermediateVariable(BooleanDataViewType.Instance, DefaultColumnNames.PredictedLabel);
                writer.AddNodeTo("Greater", new[] { score, writer.AddInitializer("zero", new[] { 0f }, new long[] { 1 }) }, predicted);
                break;
            }
            default:
            {
                string score = ctx.AddIntermediateVariable(NumberDataViewType.Single, DefaultColumnNames.Score);
                writer.AddNodeTo("Identity", new[] { logits }, score);
                break;
            }
        }
    }

    private static string? InputColumn(NetworkTransformerBase transformer) => transformer switch
    {
        NeuralNetworkTransformer mlp => mlp.FeatureColumnName,
        // MLImage columns cannot be ONNX inputs (ML.NET refuses them), so only pixel vectors qualify.
        ImageClassifierTransformer image when image.Image.Kind != ImageColumnKind.MLImage => image.Image.ColumnName,
        _ => null,
    };
}
