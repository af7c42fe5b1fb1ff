using MLExtensions.Core.Native;
using MLExtensions.Tests.Support;
using MLExtensions.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;

namespace MLExtensions.Tests.Text;

/// <summary>Hugging Face checkpoint folders written by the test itself: round trip, prefixes and extra heads, errors.</summary>
public class HuggingFaceCheckpointTests
{
    public HuggingFaceCheckpointTests() => TorchNativeLoader.EnsureLoaded();

    private static BertConfig Tiny() => new()
    {
        VocabSize = TinyText.Vocabulary.Count, HiddenSize = 16, Layers = 2, Heads = 2, IntermediateSize = 32, MaxPositions = 32,
    };

    private static float[] Run(BertEncoder encoder)
    {
        var tokenizer = new WordPieceTokenizer(TinyText.Vocabulary, true);
        encoder.eval();
        using var noGrad = torch.no_grad();
        using var packed = TokenBatchSource.Pack(new[] { tokenizer.Encode("great tea", "stale box", 32) }, tokenizer.PadId);
        using var output = encoder.call(TextClassifierNetwork.Unpack(packed));
        return output.data<float>().ToArray();
    }

    [Fact]
    public void RoundTripGivesIdenticalOutputs()
    {
        using var temp = new TempDirectory();
        using var original = new BertEncoder(Tiny(), new torch.Generator(4, torch.CPU));
        HuggingFaceCheckpoint.Save(original, TinyText.Vocabulary, temp.Path);

        var checkpoint = HuggingFaceCheckpoint.Load(temp.Path);
        using var loaded = new BertEncoder(checkpoint.Config);
        checkpoint.LoadInto(loaded);

        Assert.Equal(TinyText.Vocabulary, checkpoint.Vocabulary);
        Assert.Equal(Run(original), Run(loaded));
    }

    [Fact]
    public void BertPrefixPoolerAndTaskHeadsAreHandled()
    {
        using var temp = new TempDirectory();
        using var original = new BertEncoder(Tiny(), new torch.Generator(5, torch.CPU));
        HuggingFaceCheckpoint.Save(original, TinyText.Vocabulary, temp.Path);
        // Rewrite the weights the way BertForSequenceClassification saves them: "bert." prefix, pooler, classifier.
        var renamed = original.state_dict().ToDictionary(kv => "bert." + kv.Key, kv => kv.Value);
        renamed["bert.pooler.dense.weight"] = torch.zeros(16, 16);
        renamed["classifier.weight"] = torch.zeros(2, 16);
        Safetensors.SaveStateDict(Path.Combine(temp.Path, "model.safetensors"), renamed);

        var checkpoint = HuggingFaceCheckpoint.Load(temp.Path);
        using var loaded = new BertEncoder(checkpoint.Config);
        checkpoint.LoadInto(loaded);
        Assert.Equal(Run(original), Run(loaded));
    }

    [Fact]
    public void ErrorsNameTheFileAndTheMismatch()
    {
        using var temp = new TempDirectory();
        var missing = Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceCheckpoint.Load(temp.File("nothing")));
        Assert.Equal($"Checkpoint folder '{temp.File("nothing")}' does not exist.", missing.Message);

        using var encoder = new BertEncoder(Tiny());
        HuggingFaceCheckpoint.Save(encoder, TinyText.Vocabulary, temp.Path);
        File.WriteAllLines(temp.File("vocab.txt"), TinyText.Vocabulary.Take(10));
        var vocab = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.Equal($"'{temp.File("vocab.txt")}' has 10 entries but config.json says vocab_size = {TinyText.Vocabulary.Count}; the vocabulary does not belong to these weights.", vocab.Message);

        File.WriteAllLines(temp.File("vocab.txt"), TinyText.Vocabulary);
        var wider = Tiny();
        wider.IntermediateSize = 64;
        File.WriteAllText(temp.File("config.json"), System.Text.Json.JsonSerializer.Serialize(wider));
        var checkpoint = HuggingFaceCheckpoint.Load(temp.Path);
        using var target = new BertEncoder(checkpoint.Config);
        var shape = Assert.Throws<InvalidDataException>(() => checkpoint.LoadInto(target));
        Assert.Contains("has shape [32, 16] but the configuration needs [64, 16]", shape.Message);

        File.Delete(temp.File("model.safetensors"));
        var weights = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.StartsWith($"Checkpoint folder '{temp.Path}' has neither model.safetensors nor pytorch_model.bin.", weights.Message);
    }
}
