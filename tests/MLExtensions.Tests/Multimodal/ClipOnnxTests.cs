using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Multimodal;
using MLExtensions.Onnx;
using MLExtensions.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Multimodal;

/// <summary>
/// ONNX export of CLIP's towers and the zero-shot classifier: the graphs the library writes itself, run by ONNX Runtime,
/// against the TorchSharp transformers on the fixture (both export forms: the portable file of ExportToOnnx and the
/// ONNX Runtime form of ToOnnxRuntime), and dynamic int8 quantization.
/// </summary>
public class ClipOnnxTests
{
    private const float Tolerance = 1e-4f;
    private readonly ITestOutputHelper _out;

    public ClipOnnxTests(ITestOutputHelper output) => _out = output;

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    /// <summary>Seeded random RGB images of <paramref name="height"/>×<paramref name="width"/> (Single 0–255) with some structure, so resizing matters.</summary>
    private static IDataView Images(MLContext ml, int count, int height, int width, int seed)
    {
        var random = new Random(seed);
        var rows = Enumerable.Range(0, count).Select(_ =>
        {
            var pixels = new float[3 * height * width];
            int cx = random.Next(width), cy = random.Next(height);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                        pixels[(c * height + y) * width + x] = Math.Clamp(((x - cx) * (c + 1) + (y - cy) * (3 - c)) * 6 + 128 + random.Next(-40, 41), 0, 255);
            return pixels;
        }).ToList();
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        schema[nameof(PixelRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3 * height * width);
        return ml.Data.LoadFromEnumerable(rows.Select(p => new PixelRow { Features = p }), schema);
    }

    public sealed class PixelRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static float[][] Column(IDataView data, string name) => data.GetColumn<float[]>(name).ToArray();

    /// <summary>Runs an exported file on a batch of all rows at once (dynamic batch dimension).</summary>
    private static float[][] RunFile(string path, NamedOnnxValue input, int rows)
    {
        using var session = new InferenceSession(path);
        using var results = session.Run(new[] { input });
        var flat = results.Single(r => r.Name == "embedding").AsTensor<float>().ToArray();
        int d = flat.Length / rows;
        return Enumerable.Range(0, rows).Select(i => flat.AsSpan(i * d, d).ToArray()).ToArray();
    }

    [Theory]
    [InlineData(32, 32)] // the model's resolution: no resize, no crop
    [InlineData(40, 60)] // downscaled bicubic with antialiasing, then centre-cropped
    [InlineData(20, 28)] // upscaled, then centre-cropped
    public void Image_tower_exports_match_TorchSharp(int height, int width)
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, 4, height, width, seed: height * width);
        var torch = ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model, new ClipImageInputOptions { ImageHeight = height, ImageWidth = width }).Fit(data);
        var expected = Column(torch.Transform(data), "Embedding");

        var onnx = ml.Model.ToOnnxRuntime(torch);
        Assert.IsType<OnnxEmbeddingTransformer>(onnx);
        ClipModelTests.AssertClose(expected, Column(onnx.Transform(data), "Embedding"), Tolerance);

        using var temp = new TempDirectory();
        ml.Model.ExportToOnnx(torch, data.Schema, temp.File("image.onnx"));
        var pixels = data.GetColumn<float[]>("Features").SelectMany(p => p).ToArray();
        var input = NamedOnnxValue.CreateFromTensor("pixels", new DenseTensor<float>(pixels, new[] { 4, 3 * height * width }));
        ClipModelTests.AssertClose(expected, RunFile(temp.File("image.onnx"), input, 4), Tolerance);

        // The ONNX Runtime form saves and reloads with its model inside the zip.
        ml.Model.Save(onnx, data.Schema, temp.File("onnx.zip"));
        ClipModelTests.AssertClose(expected, Column(ml.Model.Load(temp.File("onnx.zip"), out _).Transform(data), "Embedding"), Tolerance);
    }

    [Theory]
    [InlineData(ClipTextPooling.ArgmaxId)]
    [InlineData(ClipTextPooling.FirstEosToken)]
    public void Text_tower_exports_match_TorchSharp_under_both_pooling_rules(ClipTextPooling pooling)
    {
        var ml = new MLContext(seed: 1);
        var texts = ClipFixture.Texts().Concat(new[] { "a photo of a dog on a photo of a cat", "photo" }).ToList();
        var data = ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));
        using var model = ClipModel.Load(ClipFixture.HuggingFaceFolder);
        model.Config.Text.Pooling = pooling;
        if (pooling == ClipTextPooling.FirstEosToken)
        {
            // With the real end token both rules pick the same position; pool at the first "photo" instead, so the
            // test fails if the exported graph ignores the rule or the configured id.
            model.Config.Text.EosTokenId = model.Tokenizer.EncodeToIds("photo")[0];
        }
        var torch = ml.Transforms.ClipTextEmbedding("Embedding", "Text", model).Fit(data);
        var expected = Column(torch.Transform(data), "Embedding");
        if (pooling == ClipTextPooling.FirstEosToken)
            Assert.True(ClipModelTests.Cosine(expected[4], ClipFixture.Model.EmbedTexts(new[] { texts[4] })[0]) < 0.999f, "the two pooling positions give different embeddings");

        // ToOnnxRuntime: one row at a time, ids cut after the end token.
        var onnx = ml.Model.ToOnnxRuntime(torch);
        ClipModelTests.AssertClose(expected, Column(onnx.Transform(data), "Embedding"), Tolerance);

        // ExportToOnnx: the portable graph on a padded batch of full-length ids, as the TorchSharp tower sees them.
        using var temp = new TempDirectory();
        ml.Model.ExportToOnnx(torch, data.Schema, temp.File("text.onnx"));
        var ids = texts.SelectMany(t => model.Tokenizer.Encode(t)).ToArray();
        var input = NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, new[] { texts.Count, model.Tokenizer.ContextLength }));
        ClipModelTests.AssertClose(expected, RunFile(temp.File("text.onnx"), input, texts.Count), Tolerance);

        // Saved and reloaded: the tokenizer travels with the ONNX model.
        ml.Model.Save(onnx, data.Schema, temp.File("onnx.zip"));
        ClipModelTests.AssertClose(expected, Column(ml.Model.Load(temp.File("onnx.zip"), out _).Transform(data), "Embedding"), Tolerance);
    }

    [Fact]
    public void Zero_shot_score_through_ToOnnxRuntime_equals_TorchSharp()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml, 5, 40, 60, seed: 7);
        var classes = new List<string> { "a dog", "a cat", "a photo of a horse", "an empty room" };
        var torch = ml.MulticlassClassification.Trainers.ZeroShotImageClassifier(new ZeroShotImageClassifierOptions
        {
            Model = ClipFixture.Model,
            ClassNames = classes,
            PromptTemplates = new List<string> { "{}", "a picture of {}." },
            ImageColumnName = "Features",
            ImageHeight = 40,
            ImageWidth = 60,
        }).Fit(data);
        var expected = torch.Transform(data);
        var onnx = ml.Model.ToOnnxRuntime(torch);
        Assert.IsType<OnnxNetworkTransformer>(onnx);
        var actual = onnx.Transform(data);
        ClipModelTests.AssertClose(Column(expected, "Score"), Column(actual, "Score"), 1e-5f);
        Assert.Equal(expected.GetColumn<uint>("PredictedLabel"), actual.GetColumn<uint>("PredictedLabel"));
        Assert.Equal(classes, ((OnnxNetworkTransformer)onnx).ClassNames);
    }

    [Fact]
    public void Dynamic_int8_quantization_keeps_both_towers_close_to_float()
    {
        var ml = new MLContext(seed: 1);
        var images = Images(ml, 8, 40, 60, seed: 11);
        var texts = ml.Data.LoadFromEnumerable(new[] { "a photo of a cat", "a diagram", "two dogs playing in the snow", "red", "a photo of a dog", "the quick brown fox" }
            .Select(t => new TextRow { Text = t }));
        var towers = new (ITransformer Model, IDataView Data)[]
        {
            (ml.Transforms.ClipImageEmbedding("Embedding", "Features", ClipFixture.Model, new ClipImageInputOptions { ImageHeight = 40, ImageWidth = 60 }).Fit(images), images),
            (ml.Transforms.ClipTextEmbedding("Embedding", "Text", ClipFixture.Model).Fit(texts), texts),
        };
        foreach (var (model, data) in towers)
        {
            var quantized = ml.Model.Quantize(model, data, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 }, out var summary);
            Assert.IsType<OnnxEmbeddingTransformer>(quantized);
            Assert.True(summary.Report.QuantizedModelBytes < summary.Report.FloatModelBytes, summary.ToString());
            var before = Column(model.Transform(data), "Embedding");
            var after = Column(quantized.Transform(data), "Embedding");
            float worst = before.Zip(after, ClipModelTests.Cosine).Min();
            _out.WriteLine($"{summary}; worst cosine {worst:F5}");
            Assert.True(worst >= 0.99f, $"int8 embeddings have cosine {worst} with the float ones");
            Assert.True(worst < 1f - 1e-7f || summary.MaxScoreDifference > 0, "the quantized model is a different computation");
        }
    }

    [Fact]
    public void The_lit_text_tower_MiniLM_sentence_embedding_exports_and_quantizes()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { "a photo of a bag.", "Ankle boot, a short boot covering the ankle", "a low resolution photo of the trouser.", "x" }
            .Select(t => new TextRow { Text = t }));
        var torch = ml.Transforms.Text.SentenceEmbedding("Embedding", "Text").Fit(data);
        var expected = Column(torch.Transform(data), "Embedding");
        var onnx = ml.Model.ToOnnxRuntime(torch);
        Assert.IsType<OnnxEmbeddingTransformer>(onnx);
        ClipModelTests.AssertClose(expected, Column(onnx.Transform(data), "Embedding"), Tolerance);

        using var temp = new TempDirectory();
        ml.Model.ExportToOnnx(torch, data.Schema, temp.File("minilm.onnx"));
        using (var session = new InferenceSession(temp.File("minilm.onnx")))
            Assert.Equal(new[] { "input_ids", "attention_mask", "token_type_ids" }, session.InputMetadata.Keys.ToArray());

        var quantized = ml.Model.Quantize(torch, data, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 }, out var summary);
        float worst = expected.Zip(Column(quantized.Transform(data), "Embedding"), ClipModelTests.Cosine).Min();
        _out.WriteLine($"{summary}; worst cosine {worst:F5}");
        // Measured 0.987 (the worst of these rows): MiniLM's six layers of int8 matrix products lose a little more than the tiny CLIP towers (≥ 0.9997).
        Assert.True(worst >= 0.98f, $"int8 MiniLM embeddings have cosine {worst} with the float ones");
    }
}
