using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Onnx;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using MLExtensions.Text;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Onnx;

/// <summary>
/// Text classifiers exported to ONNX match the TorchSharp transformer on real fine-food reviews: one review at a time
/// (what the transformer does) and as one padded batch, which exercises the attention mask and masked mean pooling —
/// both the portable file of ExportToOnnx and the graph with ONNX Runtime's fused attention that ToOnnxRuntime runs.
/// </summary>
public class TextExportTests
{
    private const float Tolerance = 1e-4f;
    private readonly ITestOutputHelper _log;

    public TextExportTests(ITestOutputHelper log) => _log = log;

    /// <summary>all-MiniLM-L6-v2 weights with a fresh binary head, mean pooling.</summary>
    internal static TextClassifierTransformer MiniLmClassifier(MLContext ml, IDataView data, int maxLength = 64)
    {
        TorchNativeLoader.EnsureLoaded();
        var encoder = new BertEncoder(BertConfig.MiniLmL6);
        MiniLmWeights.LoadInto(encoder);
        var network = new TextClassifierNetwork(encoder, 1, TextPooling.Mean, 0.1, new Generator(7, CPU));
        var outputs = PredictionOutputs.FromLabel(LabelBinding.Bind(data.Schema, "Label", PredictionTask.BinaryClassification));
        var tokenizer = new WordPieceTokenizer(MiniLmWeights.LoadVocabulary(), lowerCase: true);
        return new TextClassifierTransformer((IHostEnvironment)ml, network, outputs, new TextClassifierOptions { MaxLength = maxLength }, tokenizer, new TextColumns("Text", null));
    }

    [Fact]
    public void MiniLmClassifierMatchesOnRealReviewsOneByOneAndPadded()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(10).ToList());
        var model = MiniLmClassifier(ml, data);
        AssertEquivalent(ml, model, data, "MiniLM mean-pooled");
    }

    [Fact]
    public void SmallSinusoidalClsEncoderWithTanhGeluMatches()
    {
        // A small encoder from scratch: sinusoidal positions, GELU's tanh form, CLS pooling, three classes.
        var ml = new MLContext(seed: 2);
        var rows = FineFoods.Rows(ml, "test.csv").Take(12).ToList();
        var raw = ml.Data.LoadFromEnumerable(rows.Select((r, i) => new ThreeClassRow { Text = r.Text, Label = (i % 3).ToString() }));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var model = ScratchClassifier(ml, data, PredictionTask.MulticlassClassification, 3, TextPooling.Cls, layers: 2, hidden: 64, heads: 4, maxLength: 48, seed: 3,
            c => c.HiddenActivation = "gelu_new");
        AssertEquivalent(ml, model, data, "small CLS");
    }

    [Fact]
    public void LowRankWordEmbeddingsMatch()
    {
        // A factorized word-embedding table (BertConfig.WordEmbeddingRank) exports as Gather then the widening MatMul + Add.
        var ml = new MLContext(seed: 4);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(6).ToList());
        var model = ScratchClassifier(ml, data, PredictionTask.BinaryClassification, 1, TextPooling.Mean, layers: 1, hidden: 32, heads: 2, maxLength: 40, seed: 8,
            c => c.WordEmbeddingRank = 8);
        AssertEquivalent(ml, model, data, "low-rank words");
    }

    [Fact]
    public void ExactGeluIsFusedByOnnxRuntimesOptimizer()
    {
        // GELU written as Div → Erf → Add → Mul → Mul lets ONNX Runtime replace it by one BiasGelu kernel; the int8
        // throughput target depends on it (unfused, the five element-wise kernels cost as much as the int8 MatMuls saved).
        var ml = new MLContext(seed: 3);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(4).ToList());
        var model = ScratchClassifier(ml, data, PredictionTask.BinaryClassification, 1, TextPooling.Mean, layers: 2, hidden: 32, heads: 2, maxLength: 32, seed: 5);
        var config = model.Classifier.Encoder.Config;
        Assert.Equal("gelu", config.HiddenActivation);
        using var temp = new TempDirectory();
        string path = temp.File("gelu.onnx"), optimized = temp.File("gelu.optimized.onnx");
        ml.Model.ExportToOnnx(model, data.Schema, path);
        Assert.Contains("Erf", OperatorTypes(File.ReadAllBytes(path)));

        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })
        using (new InferenceSession(path, options))
        {
        }
        var fused = OperatorTypes(File.ReadAllBytes(optimized));
        _log.WriteLine("after ONNX Runtime's optimizer: " + string.Join(", ", fused.GroupBy(t => t).Select(g => $"{g.Key} ×{g.Count()}")));
        Assert.Equal(config.Layers, fused.Count(t => t == "BiasGelu"));
        Assert.DoesNotContain("Erf", fused);
    }

    /// <summary>A classifier on a new random <see cref="BertConfig.Small"/> encoder with MiniLM's vocabulary; <paramref name="adjust"/> changes the configuration first.</summary>
    private static TextClassifierTransformer ScratchClassifier(MLContext ml, IDataView data, PredictionTask task, int classes, TextPooling pooling,
        int layers, int hidden, int heads, int maxLength, ulong seed, Action<BertConfig>? adjust = null)
    {
        TorchNativeLoader.EnsureLoaded();
        var vocabulary = MiniLmWeights.LoadVocabulary();
        var config = BertConfig.Small(vocabulary.Count, layers, hidden, heads);
        adjust?.Invoke(config);
        var network = new TextClassifierNetwork(new BertEncoder(config, new Generator(seed, CPU)), classes, pooling, 0.1, new Generator(seed + 1, CPU));
        var outputs = PredictionOutputs.FromLabel(LabelBinding.Bind(data.Schema, "Label", task));
        return new TextClassifierTransformer((IHostEnvironment)ml, network, outputs, new TextClassifierOptions { MaxLength = maxLength },
            new WordPieceTokenizer(vocabulary, lowerCase: true), new TextColumns("Text", null));
    }

    private static List<string> OperatorTypes(byte[] model) => global::Onnx.ModelProto.Parser.ParseFrom(model).Graph.Node.Select(n => n.OpType).ToList();

    private void AssertEquivalent(MLContext ml, TextClassifierTransformer model, IDataView data, string label)
    {
        using var temp = new TempDirectory();
        string path = temp.File("text.onnx");
        ml.Model.ExportToOnnx(model, data.Schema, path);
        byte[] portable = File.ReadAllBytes(path);
        // ToOnnxRuntime (and Quantize) build the graph for ONNX Runtime alone, with its fused attention operator.
        byte[] fused = ((OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(model)).GetOnnxModel();
        var portableNodes = global::Onnx.ModelProto.Parser.ParseFrom(portable).Graph.Node;
        Assert.All(portableNodes, n => Assert.Equal("", n.Domain));
        var fusedNodes = global::Onnx.ModelProto.Parser.ParseFrom(fused).Graph.Node;
        Assert.Equal(model.Classifier.Encoder.Config.Layers, fusedNodes.Count(n => n is { OpType: "MultiHeadAttention", Domain: "com.microsoft" }));
        Assert.DoesNotContain(fusedNodes, n => n.OpType is "Softmax" or "Transpose" && n.Output[0].Contains(".attention", StringComparison.Ordinal));
        Assert.Contains(portableNodes, n => n.OpType is "Softmax" && n.Output[0].Contains(".attention", StringComparison.Ordinal));

        // The reference: ML.NET's output columns, computed by the TorchSharp transformer row by row.
        var scored = model.Transform(data);
        float[][] expected = model.Kind == PredictionTask.BinaryClassification
            ? scored.GetColumn<float>("Probability").Select(p => new[] { p }).ToArray()
            : scored.GetColumn<float[]>("Score").ToArray();
        Assert.True(expected.Select(r => r[0]).Distinct().Count() > 1, "the outputs do not depend on the text");
        var texts = data.GetColumn<string>("Text").ToArray();
        var tokens = texts.Select(t => model.Tokenizer.Encode(t, null, model.MaxLength)).ToArray();
        Assert.True(tokens.Select(t => t.Length).Distinct().Count() > 1, "the reviews should have different lengths so the batch needs padding");

        foreach (var (form, bytes) in new[] { ("portable", portable), ("fused attention", fused) })
        {
            using var session = new InferenceSession(bytes);
            Assert.Equal(new[] { -1, -1 }, session.InputMetadata["input_ids"].Dimensions);
            var metadata = session.ModelMetadata.CustomMetadataMap;
            Assert.Equal(model.Tokenizer.Vocabulary, metadata["tokenizer.vocabulary"].Split('\n'));
            Assert.Equal(model.MaxLength.ToString(), metadata["tokenizer.max_length"]);
            Assert.Equal("true", metadata["tokenizer.lower_case"]);

            var oneByOne = tokens.Select(t => Run(session, new[] { t }, model.Tokenizer.PadId)[0]).ToArray();
            var padded = Run(session, tokens, model.Tokenizer.PadId);
            float deltaSingle = OnnxTestData.MaxAbsDifference(expected, oneByOne);
            float deltaPadded = OnnxTestData.MaxAbsDifference(expected, padded);
            _log.WriteLine($"{label}, {form}: {texts.Length} reviews, {tokens.Min(t => t.Length)}–{tokens.Max(t => t.Length)} tokens: max |Δ| one by one = {deltaSingle:E2}, padded batch = {deltaPadded:E2}");
            Assert.True(deltaSingle <= Tolerance, $"{form}, one by one: {deltaSingle}");
            Assert.True(deltaPadded <= Tolerance, $"{form}, padded: {deltaPadded}");
        }
    }

    /// <summary>Runs the ONNX model on token sequences padded to the longest; returns the probabilities per row.</summary>
    internal static float[][] Run(InferenceSession session, IReadOnlyList<TokenizedText> batch, int padId)
    {
        int n = batch.Count, length = batch.Max(t => t.Length);
        var ids = new DenseTensor<long>(new[] { n, length });
        var mask = new DenseTensor<long>(new[] { n, length });
        var types = new DenseTensor<long>(new[] { n, length });
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < length; j++)
            {
                bool real = j < batch[i].Length;
                ids[i, j] = real ? batch[i].Ids[j] : padId;
                mask[i, j] = real ? 1 : 0;
                types[i, j] = real ? batch[i].TypeIds[j] : 0;
            }
        }
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("input_ids", ids),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        }, new[] { "probabilities" });
        var output = results[0].AsTensor<float>();
        int k = output.Dimensions[1];
        var values = output.ToArray();
        return Enumerable.Range(0, n).Select(i => values.AsSpan(i * k, k).ToArray()).ToArray();
    }

    private sealed class ThreeClassRow
    {
        public string Text { get; set; } = "";

        public string Label { get; set; } = "";
    }
}
