using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Onnx;
using MLExtensions.Tests.Support;
using MLExtensions.Tests.Text;
using Onnx;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>
/// Int8 of a graph built for ONNX Runtime: each layer's query/key/value MatMuls and MultiHeadAttention become one
/// QAttention node with packed per-column weights. In dynamic mode the model computes what the unfused int8 form computes;
/// in static mode the calibrated input parameters feed the QAttention and the model stays as close to float as the unfused
/// static form.
/// </summary>
public class AttentionFusionTests
{
    private readonly ITestOutputHelper _log;

    public AttentionFusionTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void PackedQAttentionGivesTheSameOutputsAsSeparateInt8Projections()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(8).ToList());
        var model = TextExportTests.MiniLmClassifier(ml, data, maxLength: 48);
        byte[] graph = ((OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(model)).GetOnnxModel();
        var fused = OnnxQuantizer.Quantize(graph, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 });
        var separate = OnnxQuantizer.Quantize(graph, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8, FuseAttention = false });

        int layers = model.Classifier.Encoder.Config.Layers;
        Assert.Equal(layers, Count(fused.Model, "QAttention"));
        Assert.Equal(0, Count(fused.Model, "MultiHeadAttention"));
        Assert.Equal(0, Count(separate.Model, "QAttention"));
        Assert.Equal(layers, Count(separate.Model, "MultiHeadAttention"));
        // Both report every projection as quantized: 6 linear layers per encoder layer.
        Assert.Equal(6 * layers, fused.Report.QuantizedNodes["MatMul"]);
        Assert.Equal(6 * layers, separate.Report.QuantizedNodes["MatMul"]);

        var tokens = data.GetColumn<string>("Text").Select(t => model.Tokenizer.Encode(t, null, model.MaxLength)).ToArray();
        using var fusedSession = new InferenceSession(fused.Model);
        using var separateSession = new InferenceSession(separate.Model);
        foreach (var (form, batches) in new[] { ("one by one", tokens.Select(t => new[] { t }).ToArray()), ("padded", new[] { tokens }) })
        {
            var a = batches.SelectMany(b => TextExportTests.Run(fusedSession, b, model.Tokenizer.PadId)).ToArray();
            var b = batches.SelectMany(b => TextExportTests.Run(separateSession, b, model.Tokenizer.PadId)).ToArray();
            float delta = OnnxTestData.MaxAbsDifference(a, b);
            _log.WriteLine($"{form}: {tokens.Length} reviews, max |Δ probability| fused vs separate = {delta:E2}");
            Assert.True(delta <= 1e-5f, $"{form}: {delta}");
            Assert.True(a.Select(r => r[0]).Distinct().Count() > 1, "the outputs do not depend on the text");
        }
    }

    [Fact]
    public void QuantizedClassifierWithQAttentionSurvivesSaveLoadAndServesFromPredictionEngine()
    {
        var ml = new MLContext(seed: 3);
        var rows = FineFoods.Rows(ml, "test.csv").Take(6).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = TextExportTests.MiniLmClassifier(ml, data, maxLength: 32);
        var quantized = ml.Model.Quantize(model, data, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 });
        Assert.Equal(model.Classifier.Encoder.Config.Layers, Count(((OnnxNetworkTransformer)quantized).GetOnnxModel(), "QAttention"));

        using var temp = new TempDirectory();
        ml.Model.Save(quantized, data.Schema, temp.File("quantized.zip"));
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(temp.File("quantized.zip"), out _);
        Assert.Equal(PredictionDump.Lines(quantized.Transform(data)), PredictionDump.Lines(loaded.Transform(data)));

        var engine = fresh.Model.CreatePredictionEngine<FineFoods.Row, Prediction>(loaded);
        var expected = quantized.Transform(data).GetColumn<float>("Probability").ToArray();
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(expected[i], engine.Predict(rows[i]).Probability);
    }

    [Fact]
    public void StaticInt8PacksAttentionWithTheCalibratedInputParameters()
    {
        var ml = new MLContext(seed: 4);
        var rows = FineFoods.Rows(ml, "test.csv").Take(12).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = TextExportTests.MiniLmClassifier(ml, data, maxLength: 32);
        var options = new QuantizationOptions { Mode = QuantizationMode.StaticInt8 };
        var fused = (OnnxNetworkTransformer)ml.Model.Quantize(model, data, options, out var fusedSummary);
        var separate = (OnnxNetworkTransformer)ml.Model.Quantize(model, data, new QuantizationOptions { Mode = QuantizationMode.StaticInt8, FuseAttention = false });
        var symmetric = (OnnxNetworkTransformer)ml.Model.Quantize(model, data, new QuantizationOptions { Mode = QuantizationMode.StaticInt8, SymmetricActivations = true });

        int layers = model.Classifier.Encoder.Config.Layers;
        Assert.Equal(layers, Count(fused.GetOnnxModel(), "QAttention"));
        Assert.Equal(0, Count(fused.GetOnnxModel(), "MultiHeadAttention"));
        Assert.Equal(0, Count(fused.GetOnnxModel(), "DynamicQuantizeLinear"));
        Assert.Equal(0, Count(separate.GetOnnxModel(), "QAttention"));
        Assert.Equal(0, Count(symmetric.GetOnnxModel(), "QAttention")); // QAttention reads uint8 input only
        _log.WriteLine(fusedSummary.ToString());

        float[] Probabilities(ITransformer t) => t.Transform(data).GetColumn<float>("Probability").ToArray();
        var reference = Probabilities(model);
        var a = Probabilities(fused);
        var b = Probabilities(separate);
        float fusedError = a.Zip(reference).Max(p => Math.Abs(p.First - p.Second));
        float separateError = b.Zip(reference).Max(p => Math.Abs(p.First - p.Second));
        _log.WriteLine($"max |Δ probability| against float: fused {fusedError:E2}, separate {separateError:E2}");
        Assert.True(fusedError <= Math.Max(0.03f, 1.5f * separateError), $"fused {fusedError}, separate {separateError}");
        Assert.True(a.Distinct().Count() > 1, "the outputs do not depend on the text");
        // Decisions agree wherever the float model is not on the fence (an error of < 0.03 cannot move those across 0.5).
        var clear = Enumerable.Range(0, reference.Length).Where(i => Math.Abs(reference[i] - 0.5f) > 0.05f).ToArray();
        Assert.Equal(clear.Select(i => reference[i] > 0.5f), clear.Select(i => a[i] > 0.5f));
    }

    [Fact]
    public void PerTensorWeightsKeepTheProjectionsSeparate()
    {
        // One scale for the packed [K, 3N] weight would differ from one per projection, so the pass declines.
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(FineFoods.Rows(ml, "test.csv").Take(2).ToList());
        byte[] graph = ((OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(TextExportTests.MiniLmClassifier(ml, data, maxLength: 32))).GetOnnxModel();
        var result = OnnxQuantizer.Quantize(graph, new QuantizationOptions { Mode = QuantizationMode.DynamicInt8, PerChannel = false });
        Assert.Equal(0, Count(result.Model, "QAttention"));
        Assert.Equal(6, Count(result.Model, "MultiHeadAttention"));
    }

    private sealed class Prediction
    {
        public float Probability { get; set; }
    }

    private static int Count(byte[] model, string opType) => ModelProto.Parser.ParseFrom(model).Graph.Node.Count(n => n.OpType == opType);
}
