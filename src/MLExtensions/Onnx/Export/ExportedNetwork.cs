using System.Text.Json;
using MLExtensions.Core;
using MLExtensions.Multimodal;
using MLExtensions.Tabular;
using MLExtensions.Text;
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

    /// <summary>Text models' token id input, [batch, sequence] int64.</summary>
    public const string TokenIdsName = "input_ids";

    /// <summary>Text models' attention mask input (1 = token, 0 = padding), [batch, sequence] int64.</summary>
    public const string AttentionMaskName = "attention_mask";

    /// <summary>Text models' segment input (0 = first text, 1 = second), [batch, sequence] int64.</summary>
    public const string TokenTypeIdsName = "token_type_ids";

    /// <summary>Name of the output holding the raw network outputs.</summary>
    public const string LogitsName = "logits";

    /// <summary>Name of the output holding softmax (multiclass) or sigmoid (binary) probabilities.</summary>
    public const string ProbabilitiesName = "probabilities";

    /// <summary>Builds the ONNX model of <paramref name="transformer"/>.</summary>
    /// <param name="transformer">The fitted network.</param>
    /// <param name="targetsOnnxRuntime">
    /// True when the model will only run on ONNX Runtime (<c>ToOnnxRuntime</c>, <c>Quantize</c>): exporters may then use its
    /// fused contrib operators (the text encoder's attention becomes one MultiHeadAttention node per layer). False writes
    /// only standard ONNX operators, for files other runtimes may read.
    /// </param>
    /// <exception cref="NotSupportedException">The network (or a layer in it) cannot be exported.</exception>
    public static ModelProto Build(NetworkTransformerBase transformer, bool targetsOnnxRuntime = false)
    {
        var input = NetworkInput.Of(transformer);
        var writer = new ProtoGraphWriter(OpsetVersion, transformer.GetType().Name, targetsOnnxRuntime);
        foreach (var graphInput in input.Inputs)
            writer.Graph.Input.Add(ValueInfo(writer.Reserve(graphInput.Name), graphInput.ElementType, graphInput.Dims));

        var exporter = new ModuleExporter(writer);
        string raw = transformer switch
        {
            TextClassifierTransformer text => BertEncoderExporter.ExportClassifier(exporter, text.Classifier, new BertEncoderExporter.TokenInputs(TokenIdsName, AttentionMaskName, TokenTypeIdsName), "network"),
            ZeroShotImageClassifierTransformer zeroShot => ClipExporter.ZeroShot(exporter, zeroShot.ZeroShot, input.Inputs[0].Name, "network"),
            _ => exporter.Export(transformer.Network, input.Inputs[0].Name, "network"),
        };
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

        return Wrap(writer, transformer.GetType().Name, Metadata(transformer, input));
    }

    /// <summary>The model around a finished graph: IR version, opsets (ONNX Runtime's contrib domain when used), producer, metadata.</summary>
    internal static ModelProto Wrap(ProtoGraphWriter writer, string source, IEnumerable<(string Key, string Value)> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "MLExtensions",
            ProducerVersion = typeof(ExportedNetwork).Assembly.GetName().Version?.ToString() ?? "",
            Graph = writer.Graph,
            DocString = $"{source} exported by MLExtensions.",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        if (writer.UsesOnnxRuntimeDomain)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ProtoGraphWriter.OnnxRuntimeDomain, Version = 1 });
        foreach (var (key, value) in metadata)
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
        foreach (var entry in input.Extra)
            yield return entry;
        yield return ("outputs", outputs.Kind switch
        {
            PredictionTask.MulticlassClassification => "logits: raw class scores; probabilities: softmax(logits). ML.NET's Score column is the probabilities, PredictedLabel = arg-max + 1 as a key.",
            PredictionTask.BinaryClassification => "logits: the logit (ML.NET's Score); probabilities: sigmoid(logits) (ML.NET's Probability); PredictedLabel = logits > 0.",
            _ => "logits: the predicted value (ML.NET's Score).",
        });
    }

    internal static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
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

    /// <summary>How the three BERT token inputs are made from text (WordPiece, outside the graph; details in <see cref="WordPieceMetadata"/>).</summary>
    internal static string WordPieceDescription(WordPieceTokenizer tokenizer) =>
        "Text is tokenized outside the graph with the WordPiece vocabulary in 'tokenizer.vocabulary' (BERT basic tokenization, " +
        "lower-cased and accents stripped when 'tokenizer.lower_case'): [CLS] text [SEP] (second text [SEP]), truncated to " +
        "'tokenizer.max_length' tokens; attention_mask is 1 on tokens and 0 on padding (pad id in 'tokenizer.special_ids'); token_type_ids is 0 for the first text and 1 for the second." +
        (tokenizer.IsPruned
            ? " The vocabulary is pruned: text is split into word pieces with 'tokenizer.source_vocabulary', and a piece's id is the line of 'tokenizer.vocabulary' " +
              $"that has the same piece, or the id of [UNK] ({tokenizer.UnknownId}) when there is none."
            : "");

    /// <summary>The tokenizer settings and vocabulary a caller needs to feed a BERT-family graph.</summary>
    internal static IEnumerable<(string Key, string Value)> WordPieceMetadata(WordPieceTokenizer tokenizer, int maxLength, TextPooling pooling)
    {
        yield return ("tokenizer.kind", "WordPiece");
        yield return ("tokenizer.lower_case", tokenizer.LowerCase ? "true" : "false");
        yield return ("tokenizer.max_length", maxLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return ("tokenizer.special_ids", JsonSerializer.Serialize(new { cls = tokenizer.ClsId, sep = tokenizer.SepId, pad = tokenizer.PadId }));
        yield return ("tokenizer.vocabulary", string.Join("\n", tokenizer.Vocabulary));
        yield return ("pooling", pooling.ToString());
        if (tokenizer.IsPruned)
            yield return ("tokenizer.source_vocabulary", string.Join("\n", tokenizer.SourceVocabulary));
    }

    /// <summary>One graph input: name, element type, dimensions (strings are symbolic).</summary>
    private sealed record GraphInput(string Name, TensorProto.Types.DataType ElementType, object[] Dims);

    /// <summary>The graph inputs of a network, the columns that feed them, and how (plus any extra metadata).</summary>
    private sealed record NetworkInput(GraphInput[] Inputs, string[] SourceColumns, string Preprocessing, (string Key, string Value)[] Extra)
    {
        public static NetworkInput Of(NetworkTransformerBase transformer) => transformer switch
        {
            NeuralNetworkTransformer mlp => new NetworkInput(
                new[] { new GraphInput("features", TensorProto.Types.DataType.Float, new object[] { "batch", (long)mlp.FeatureSize }) },
                new[] { mlp.FeatureColumnName },
                mlp.Model.Standardizes
                    ? "features: the float feature vector of the ML.NET column, unscaled; standardization (stored mean and 1/std) is inside the graph."
                    : "features: the float feature vector of the ML.NET column, used as is.",
                Array.Empty<(string, string)>()),
            ImageClassifierTransformer image => new NetworkInput(
                new[] { new GraphInput("pixels", TensorProto.Types.DataType.Float, new object[] { "batch", (long)image.Image.Size }) },
                new[] { image.Image.ColumnName },
                $"pixels: {image.Image.Channels}×{image.Image.Height}×{image.Image.Width} raw pixel values (0–255 for byte and MLImage input) as float, " +
                "channel-major (all of channel 0, then channel 1…), rows top to bottom. Inside the graph: scale, " +
                (image.Classifier.Preprocess.OutputChannels != image.Image.Channels ? "grey → RGB, " : "") +
                (image.Classifier.Preprocess.Resizes ? $"bilinear resize to {image.Classifier.Preprocess.OutputSize}×{image.Classifier.Preprocess.OutputSize}, " : "") +
                "per-channel mean/std normalization.",
                Array.Empty<(string, string)>()),
            TextClassifierTransformer text => Text(text),
            ZeroShotImageClassifierTransformer zeroShot => new NetworkInput(
                new[] { new GraphInput("pixels", TensorProto.Types.DataType.Float, new object[] { "batch", (long)zeroShot.Image.Size }) },
                new[] { zeroShot.Image.ColumnName },
                ExportedEmbedding.PixelsDescription(zeroShot.Image, zeroShot.ZeroShot.ImageEncoder is ClipImageEncoder) +
                " Then the image embedding's cosine with each class's text embedding (constants), times exp(logit_scale).",
                Array.Empty<(string, string)>()),
            _ => throw new NotSupportedException($"ONNX export does not support {transformer.GetType().Name}."),
        };

        private static NetworkInput Text(TextClassifierTransformer text)
        {
            var dims = new object[] { "batch", "sequence" };
            var tokenizer = text.Tokenizer;
            var columns = text.Columns.SecondTextColumnName is null
                ? new[] { text.Columns.TextColumnName }
                : new[] { text.Columns.TextColumnName, text.Columns.SecondTextColumnName };
            return new NetworkInput(
                new[]
                {
                    new GraphInput(TokenIdsName, TensorProto.Types.DataType.Int64, dims),
                    new GraphInput(AttentionMaskName, TensorProto.Types.DataType.Int64, dims),
                    new GraphInput(TokenTypeIdsName, TensorProto.Types.DataType.Int64, dims),
                },
                columns,
                WordPieceDescription(tokenizer),
                WordPieceMetadata(tokenizer, text.MaxLength, text.Classifier.Pooling).ToArray());
        }
    }
}
