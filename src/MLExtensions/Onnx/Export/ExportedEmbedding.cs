using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using MLExtensions.Multimodal;
using MLExtensions.Text;
using MLExtensions.Vision;
using Onnx;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Turns one of the library's embedding transformers — a CLIP image or text embedding (<c>ClipImageEmbedding</c>,
/// <c>ClipTextEmbedding</c>), a fitted image/text encoder's image side (<c>ImageTextEncoder</c>) or a sentence embedding
/// (<c>SentenceEmbedding</c>, e.g. LiT's MiniLM text tower) — into a stand-alone ONNX model: input <c>pixels</c> [batch, C·H·W]
/// (raw values, preprocessing inside), <c>input_ids</c> [batch, sequence] int64 (CLIP's BPE tokens, tokenized outside) or the
/// three BERT token inputs, output <c>embedding</c> [batch, D] (L2-normalized unless the sentence embedding is not).
/// </summary>
internal static class ExportedEmbedding
{
    /// <summary>Name of the output holding the L2-normalized embeddings.</summary>
    public const string EmbeddingName = "embedding";

    /// <summary>Name of the image input.</summary>
    public const string PixelsName = "pixels";

    /// <summary>True for the transformers this class exports.</summary>
    public static bool Supports(ITransformer transformer) => transformer is ClipEmbeddingTransformer or ImageTextEncoderTransformer or SentenceEmbeddingTransformer;

    /// <summary>The input column, output column and embedding size of a supported transformer.</summary>
    public static (string Input, string Output, int Dimension) Columns(ITransformer transformer) => transformer switch
    {
        ClipEmbeddingTransformer clip => (clip.InputColumnName, clip.OutputColumnName, clip.Dimension),
        ImageTextEncoderTransformer lit => (lit.Image.ColumnName, lit.OutputColumnName, lit.Dimension),
        SentenceEmbeddingTransformer sentence => (sentence.InputColumnName, sentence.OutputColumnName, sentence.Dimension),
        _ => throw new NotSupportedException($"ONNX export does not support {transformer.GetType().Name}."),
    };

    /// <summary>Builds the ONNX model of <paramref name="transformer"/> (see <see cref="ExportedNetwork.Build"/> for <paramref name="targetsOnnxRuntime"/>).</summary>
    public static ModelProto Build(ITransformer transformer, bool targetsOnnxRuntime = false)
    {
        var writer = new ProtoGraphWriter(ExportedNetwork.OpsetVersion, transformer.GetType().Name, targetsOnnxRuntime);
        var (inputColumn, outputColumn, dimension) = Columns(transformer);
        var metadata = new List<(string Key, string Value)> { ("task", "Embedding"), ("source_columns", JsonSerializer.Serialize(new[] { inputColumn })), ("output_column", outputColumn) };
        string embedding;
        switch (transformer)
        {
            case ClipEmbeddingTransformer { ImageEncoder: { } encoder } clip:
                embedding = ClipExporter.ImageEmbedding(writer, encoder, Pixels(writer, clip.Image!), "clip");
                metadata.Add(("preprocessing", PixelsDescription(clip.Image!, clip: true)));
                break;
            case ClipEmbeddingTransformer clip:
            {
                string ids = writer.Reserve(ExportedNetwork.TokenIdsName);
                writer.Graph.Input.Add(ExportedNetwork.ValueInfo(ids, TensorProto.Types.DataType.Int64, new object[] { "batch", "sequence" }));
                embedding = ClipExporter.TextEmbedding(writer, clip.Network, ids, "clip");
                var tokenizer = clip.Tokenizer;
                metadata.Add(("preprocessing",
                    "input_ids: CLIP's byte-level BPE tokens (the checkpoint's vocab.json and merges.txt; MLExtensions.Multimodal.ClipTokenizer.Encode): " +
                    $"<|startoftext|> text <|endoftext|>, at most {tokenizer.ContextLength} ids, padded or not (the causal mask keeps padding after the end token out of the result)."));
                metadata.Add(("tokenizer.special_ids", JsonSerializer.Serialize(new { start = tokenizer.StartOfTextId, end = tokenizer.EndOfTextId })));
                metadata.Add(("tokenizer.context_length", tokenizer.ContextLength.ToString(CultureInfo.InvariantCulture)));
                break;
            }
            case ImageTextEncoderTransformer { Clip: { } encoder } clip:
                embedding = ClipExporter.ImageEmbedding(writer, encoder, Pixels(writer, clip.Image), "clip");
                metadata.Add(("preprocessing", PixelsDescription(clip.Image, clip: true)));
                break;
            case ImageTextEncoderTransformer lit:
                embedding = ClipExporter.LitImageEmbedding(new ModuleExporter(writer), lit.Lit!, Pixels(writer, lit.Image), "lit");
                metadata.Add(("preprocessing", PixelsDescription(lit.Image, clip: false)));
                break;
            case SentenceEmbeddingTransformer sentence:
            {
                var inputs = new BertEncoderExporter.TokenInputs(ExportedNetwork.TokenIdsName, ExportedNetwork.AttentionMaskName, ExportedNetwork.TokenTypeIdsName);
                foreach (string name in new[] { inputs.Ids, inputs.Mask, inputs.Types })
                    writer.Graph.Input.Add(ExportedNetwork.ValueInfo(writer.Reserve(name), TensorProto.Types.DataType.Int64, new object[] { "batch", "sequence" }));
                string hidden = BertEncoderExporter.ExportEncoder(new ModuleExporter(writer), sentence.Encoder, inputs, "encoder");
                embedding = BertEncoderExporter.Pool(writer, sentence.Options.Pooling, hidden, inputs.Mask, "pool");
                if (sentence.Options.Normalize)
                    embedding = ClipExporter.Normalize(writer, embedding, "normalize");
                metadata.Add(("preprocessing", ExportedNetwork.WordPieceDescription(sentence.Tokenizer)));
                metadata.AddRange(ExportedNetwork.WordPieceMetadata(sentence.Tokenizer, sentence.Options.MaxLength, sentence.Options.Pooling));
                break;
            }
            default:
                throw new NotSupportedException($"ONNX export does not support {transformer.GetType().Name}.");
        }
        writer.AddNodeWithOutput("Identity", new[] { embedding }, writer.Reserve(EmbeddingName));
        writer.Graph.Output.Add(ExportedNetwork.ValueInfo(EmbeddingName, TensorProto.Types.DataType.Float, new object[] { "batch", (long)dimension }));
        metadata.Add(("outputs", "embedding: the L2-normalized joint-space embedding (the ML.NET column's values); cosine similarity = dot product."));
        return ExportedNetwork.Wrap(writer, transformer.GetType().Name, metadata);
    }

    /// <summary>What the <c>pixels</c> input holds and what the graph does to it.</summary>
    public static string PixelsDescription(ImageInput image, bool clip) =>
        $"pixels: {image.Channels}×{image.Height}×{image.Width} raw pixel values (0–255) as float, channel-major (RGB), rows top to bottom. Inside the graph: " +
        (clip
            ? "CLIP's preprocessing (shortest side resized bicubic with antialiasing to the model's resolution, centre crop, CLIP mean/std), the ViT image tower, the projection, L2 normalization."
            : "the locked ResNet-18's preprocessing (gray → RGB, bilinear resize, ImageNet mean) and features, the trained projection, L2 normalization.");

    private static string Pixels(ProtoGraphWriter writer, ImageInput image)
    {
        string name = writer.Reserve(PixelsName);
        writer.Graph.Input.Add(ExportedNetwork.ValueInfo(name, TensorProto.Types.DataType.Float, new object[] { "batch", (long)image.Size }));
        return name;
    }
}
