using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Core;
using MLExtensions.Onnx;
using MLExtensions.Tests.Text;
using MLExtensions.Text;
using Onnx;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>all-MiniLM-L6-v2 quantized once per mode; real fine-food reviews for calibration (train split) and comparison (test split).</summary>
public sealed class MiniLmQuantizationFixture
{
    public const int MaxLength = 64;

    public MiniLmQuantizationFixture()
    {
        FloatModel = MiniLmWeights.LoadModelBytes();
        var tokenizer = new WordPieceTokenizer(MiniLmWeights.LoadVocabulary(), lowerCase: true);
        var ml = new MLContext(seed: 1);
        long[] Ids(string text) => tokenizer.Encode(text, null, MaxLength).Ids.Select(i => (long)i).ToArray();
        Calibration = FineFoods.Rows(ml, "train.csv").Take(16).Select(r => Ids(r.Text)).ToList();
        Test = FineFoods.Rows(ml, "test.csv").Take(24).Select(r => Ids(r.Text)).ToList();
        var samples = Calibration.Select(ids => new CalibrationSample()
            .Add("input_ids", ids, 1, ids.Length)
            .Add("attention_mask", ids.Select(_ => 1L).ToArray(), 1, ids.Length)
            .Add("token_type_ids", new long[ids.Length], 1, ids.Length)).ToList();
        Dynamic = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 });
        Static = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }, samples);
        Float16 = OnnxQuantizer.Quantize(FloatModel, new QuantizationOptions { Mode = QuantizationMode.Float16 });
        FloatEmbeddings = Embed(FloatModel);
    }

    public byte[] FloatModel { get; }

    public List<long[]> Calibration { get; }

    public List<long[]> Test { get; }

    public QuantizationResult Dynamic { get; }

    public QuantizationResult Static { get; }

    public QuantizationResult Float16 { get; }

    public List<float[]> FloatEmbeddings { get; }

    /// <summary>Sentence embeddings (mean of last_hidden_state over the tokens) of the test reviews, one review per run.</summary>
    public List<float[]> Embed(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2 };
        using var session = new InferenceSession(model, options);
        var result = new List<float[]>();
        foreach (var ids in Test)
        {
            long[] shape = { 1, ids.Length };
            using var a = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using var b = OrtValue.CreateTensorValueFromMemory(ids.Select(_ => 1L).ToArray(), shape);
            using var c = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, new[] { "input_ids", "attention_mask", "token_type_ids" }, new[] { a, b, c }, new[] { "last_hidden_state" });
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            int width = hidden.Length / ids.Length;
            var embedding = new float[width];
            for (int t = 0; t < ids.Length; t++)
                for (int d = 0; d < width; d++)
                    embedding[d] += hidden[t * width + d] / ids.Length;
            result.Add(embedding);
        }
        return result;
    }
}

public class MiniLmQuantizationTests : IClassFixture<MiniLmQuantizationFixture>
{
    private readonly MiniLmQuantizationFixture _model;
    private readonly ITestOutputHelper _output;

    public MiniLmQuantizationTests(MiniLmQuantizationFixture model, ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    // Thresholds. Cosine between the float and quantized sentence embedding of the same review: int8 rounding noise is
    // spread over 384 dimensions and 6 layers; measured (24 test reviews, ≤ 64 tokens) dynamic min ≈ 0.99, static
    // (min-max, 16 calibration reviews) min ≈ 0.98. Unrelated reviews have cosines of about 0.0–0.6 under this model,
    // so a 0.97 floor leaves no room for a wrong mapping. Retrieval: the nearest other review must stay the same for
    // at least 22 of 24 reviews (two near-ties may flip).
    [Theory]
    [InlineData(QuantizationMode.DynamicInt8, 0.98, 0.99)]
    [InlineData(QuantizationMode.StaticInt8, 0.97, 0.985)]
    [InlineData(QuantizationMode.Float16, 0.9999, 0.9999)]
    public void EmbeddingsOfRealReviewsAgreeWithTheFloatModel(QuantizationMode mode, double minCosine, double meanCosine)
    {
        var result = Result(mode);
        // Unrelated reviews are far from each other (float cosine < 0.9), so following the float model means something.
        RealModelMetrics.AssertFollows(_model.FloatEmbeddings, _model.Embed(result.Model), result.Report, _output, mode.ToString(),
            minCosine, meanCosine, minAgreement: 22.0 / 24, distinctCosine: 0.9);
    }

    [Fact]
    public void Int8ModelsAreAtMostThirtyPercentOfTheFloatModelAndReportWhatTheyDid()
    {
        foreach (var result in new[] { _model.Dynamic, _model.Static })
        {
            var report = result.Report;
            _output.WriteLine(report.ToString());
            Assert.Equal(_model.FloatModel.LongLength, report.FloatModelBytes);
            Assert.Equal(result.Model.LongLength, report.QuantizedModelBytes);
            // The word embedding table (30,522 × 384) is half the file, so this needs Gather quantization too.
            Assert.True(report.SizeRatio <= 0.30, $"size ratio {report.SizeRatio:P1}");
            // 6 layers × 6 linear layers; the 3 embedding tables; the pooler's Gemm.
            Assert.Equal(36, report.QuantizedNodes["MatMul"]);
            Assert.Equal(3, report.QuantizedNodes["Gather"]);
            Assert.Equal(1, report.QuantizedNodes["Gemm"]);
            // The attention products (Q·Kᵀ and weights·V, 2 per layer) multiply two activations.
            Assert.Equal(12, report.SkippedNodes.Count(s => s.OperatorType == "MatMul" && s.Reason.Contains("not a float32 initializer")));
        }
        Assert.InRange(_model.Float16.Report.SizeRatio, 0.49, 0.51);
    }

    [Fact]
    public void StaticWeightsDequantizeToTheFloatWeightsWithinHalfAStepPerColumn()
    {
        var original = OnnxModelReader.Load(_model.FloatModel, "MiniLM");
        var graph = ModelProto.Parser.ParseFrom(_model.Static.Model).Graph;
        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        int checkedWeights = 0;
        foreach (var dq in graph.Node.Where(n => n.OpType == "DequantizeLinear" && initializers.ContainsKey(n.Input[0]) && initializers[n.Input[0]].DataType == (int)TensorProto.Types.DataType.Int8))
        {
            string floatName = dq.Input[0][..dq.Input[0].LastIndexOf("_quantized_", StringComparison.Ordinal)];
            var weights = original.GetInitializer(floatName).ToFloatArray();
            var codes = initializers[dq.Input[0]].RawData.ToByteArray().Select(b => (sbyte)b).ToArray();
            var scales = new OnnxTensor(initializers[dq.Input[1]], dq.Input[1], OnnxTensorOrigin.Initializer, "test").ToFloatArray();
            // MatMul weights are [K, N] with one scale per column (axis 1); the pooler's Gemm has transB = 1, so its
            // weight is [N, K] with one scale per row (axis 0). Either way: one scale per output feature.
            long columns = initializers[dq.Input[0]].Dims[1];
            long axis = dq.Attribute.Single(a => a.Name == "axis").I;
            Assert.Equal(initializers[dq.Input[0]].Dims[(int)axis], scales.Length);
            for (int i = 0; i < weights.Length; i++)
            {
                float scale = scales[axis == 1 ? i % columns : i / columns];
                Assert.True(Math.Abs(codes[i] * scale - weights[i]) <= scale / 2 * 1.0001f, $"{floatName}[{i}]: {weights[i]} vs {codes[i]} × {scale}");
            }
            checkedWeights++;
        }
        // The 36 encoder MatMul weights and the pooler's Gemm weight (its bias stays float: Gemm's C is added as is).
        Assert.Equal(37, checkedWeights);
    }

    [Fact]
    public void QuantizedModelsKeepTheFloatModelsInputsAndOutputs()
    {
        static string Describe(IReadOnlyDictionary<string, NodeMetadata> values) =>
            string.Join("; ", values.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value.ElementDataType} [{string.Join(",", kv.Value.Dimensions)}]"));
        using var reference = new InferenceSession(_model.FloatModel);
        foreach (var result in new[] { _model.Dynamic, _model.Static, _model.Float16 })
        {
            using var session = new InferenceSession(result.Model);
            Assert.Equal(Describe(reference.InputMetadata), Describe(session.InputMetadata));
            Assert.Equal(Describe(reference.OutputMetadata), Describe(session.OutputMetadata));
        }
    }

    private QuantizationResult Result(QuantizationMode mode) => mode switch
    {
        QuantizationMode.DynamicInt8 => _model.Dynamic,
        QuantizationMode.StaticInt8 => _model.Static,
        _ => _model.Float16,
    };
}
