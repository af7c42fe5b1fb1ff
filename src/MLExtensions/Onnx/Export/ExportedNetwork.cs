using System.Text.Json;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Vision;
using Onnx;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Turns one of the library's fitted network transformers into a stand-alone ONNX model: named input with a
/// dynamic batch dimension, outputs <c>logits</c> (the raw network output) and, for classifiers, <c>probabilities</c>,
/// and metadata describing the task, classes and preprocessing.
/// </summary>
internal static class ExportedNetwork
{
    /// <summary>ai.onnx opset of exported models: 17 is the first with LayerNormalization and is run by every current ONNX Runtime.</summary>
    public const int OpsetVersion = 17;

    /// <summary>Name of the output holding the raw network outputs.</summary>
    public const string LogitsName = "logits";

    /// <summary>Name of the output holding softmax (multiclass) or sigmoid (binary) probabilities.</summary>
    public const string ProbabilitiesName = "probabilities";

    /// <summary>Builds the ONNX model of <paramref name="transformer"/>.</summary>
    /// <exception cref="NotSupportedException">The network (or a layer in it) cannot be exported.</exception>
    public static ModelProto Build(NetworkTransformerBase transformer)
    {
        var input = NetworkInput.Of(transformer);
        var writer = new ProtoGraphWriter(OpsetVersion, transformer.GetType().Name);
        writer.Graph.Input.Add(ValueInfo(writer.Reserve(input.Name), input.ElementType, input.Dims));

        string raw = new ModuleExporter(writer).Export(transformer.Network, input.Name, "network");
        var outputs = transformer.Outputs;
        writer.AddNodeWithOutput("Identity", new[] { raw }, writer.Reserve(LogitsName));
        var outputDims = new object[] { "batch", (long)outputs.ClassCount };
        writer.Graph.Output.Add(ValueInfo(LogitsName, TensorProto.Types.DataType.Float, outputDims));
        if (outputs.Kind != PredictionTask.Regression)
        {
            string probabilities = writer.Reserve(ProbabilitiesName);
            if (outputs.Kind == PredictionTask.MulticlassClassification)
                writer.AddNodeWithOutput("Softmax", new[] { LogitsName }, probabilities, NodeAttribute.Of("axis", -1L));
            else
                writer.AddNodeWithOutput("Sigmoid", new[] { LogitsName }, probabilities);
            writer.Graph.Output.Add(ValueInfo(ProbabilitiesName, TensorProto.Types.DataType.Float, outputDims));
        }

        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "MLExtensions",
            ProducerVersion = typeof(ExportedNetwork).Assembly.GetName().Version?.ToString() ?? "",
            Graph = writer.Graph,
            DocString = $"{transformer.GetType().Name} exported by MLExtensions.",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        foreach (var (key, value) in Metadata(transformer, input))
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    private static IEnumerable<(string Key, string Value)> Metadata(NetworkTransformerBase transformer, NetworkInput input)
    {
        var outputs = transformer.Outputs;
        yield return ("task", outputs.Kind.ToString());
        yield return ("class_count", outputs.ClassCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (outputs.ClassNames is { } names)
            yield return ("class_names", JsonSerializer.Serialize(names));
        yield return ("source_columns", JsonSerializer.Serialize(input.SourceColumns));
        yield return ("preprocessing", input.Preprocessing);
        yield return ("outputs", outputs.Kind switch
        {
            PredictionTask.MulticlassClassification => "logits: raw class scores; probabilities: softmax(logits). ML.NET's Score column is the probabilities, PredictedLabel = arg-max + 1 as a key.",
            PredictionTask.BinaryClassification => "logits: the logit (ML.NET's Score); probabilities: sigmoid(logits) (ML.NET's Probability); PredictedLabel = logits > 0.",
            _ => "logits: the predicted value (ML.NET's Score).",
        });
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string symbol
                ? new TensorShapeProto.Types.Dimension { DimParam = symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = (long)d });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// <summary>The graph input of a network: name, element type, dimensions (strings are symbolic), and what feeds it.</summary>
    private sealed record NetworkInput(string Name, TensorProto.Types.DataType ElementType, object[] Dims, string[] SourceColumns, string Preprocessing)
    {
        public static NetworkInput Of(NetworkTransformerBase transformer) => transformer switch
        {
            NeuralNetworkTransformer mlp => new NetworkInput("features", TensorProto.Types.DataType.Float, new object[] { "batch", (long)mlp.FeatureSize },
                new[] { mlp.FeatureColumnName },
                mlp.Model.Standardizes
                    ? "features: the float feature vector of the ML.NET column, unscaled; standardization (stored mean and 1/std) is inside the graph."
                    : "features: the float feature vector of the ML.NET column, used as is."),
            ImageClassifierTransformer image => new NetworkInput("pixels", TensorProto.Types.DataType.Float, new object[] { "batch", (long)image.Image.Size },
                new[] { image.Image.ColumnName },
                $"pixels: {image.Image.Channels}×{image.Image.Height}×{image.Image.Width} raw pixel values (0–255 for byte and MLImage input) as float, " +
                "channel-major (all of channel 0, then channel 1…), rows top to bottom. Inside the graph: scale, " +
                (image.Classifier.Preprocess.OutputChannels != image.Image.Channels ? "grey → RGB, " : "") +
                (image.Classifier.Preprocess.Resizes ? $"bilinear resize to {image.Classifier.Preprocess.OutputSize}×{image.Classifier.Preprocess.OutputSize}, " : "") +
                "per-channel mean/std normalization."),
            _ => throw new NotSupportedException($"ONNX export does not support {transformer.GetType().Name} yet."),
        };
    }
}
