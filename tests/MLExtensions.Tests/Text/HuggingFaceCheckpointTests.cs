using System.Text.Json.Nodes;
using MLExtensions.Core.Native;
using MLExtensions.Tests.Support;
using MLExtensions.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Text;

/// <summary>Hugging Face checkpoint folders written by the tests themselves: round trip, the layouts of task models, errors.</summary>
public class HuggingFaceCheckpointTests
{
    public HuggingFaceCheckpointTests() => TorchNativeLoader.EnsureLoaded();

    /// <summary>A 2-layer, 16-wide encoder with learned positions over the tiny vocabulary.</summary>
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

    private static (HuggingFaceCheckpoint Checkpoint, EncoderWeightLoadReport Report, float[] Output) LoadAndRun(string folder)
    {
        var checkpoint = HuggingFaceCheckpoint.Load(folder);
        using var loaded = new BertEncoder(checkpoint.Config);
        var report = checkpoint.LoadInto(loaded);
        return (checkpoint, report, Run(loaded));
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalOutputsAndAHuggingFaceLayout()
    {
        using var temp = new TempDirectory();
        var config = Tiny();
        config.LowerCase = false;
        using var original = new BertEncoder(config, new Generator(4, CPU));
        HuggingFaceCheckpoint.Save(original, TinyText.Vocabulary, temp.Path);

        var (checkpoint, report, output) = LoadAndRun(temp.Path);
        Assert.Equal(Run(original), output);
        Assert.Equal(TinyText.Vocabulary, checkpoint.Vocabulary);
        Assert.False(checkpoint.Config.LowerCase);
        Assert.Equal(temp.File("model.safetensors"), checkpoint.WeightsPath);
        Assert.Equal(original.state_dict().Count, report.LoadedKeys.Count);
        Assert.Empty(report.IgnoredKeys);

        // What transformers needs to read the folder: model_type and the tokenizer's casing in their usual files.
        var written = JsonNode.Parse(File.ReadAllText(temp.File("config.json")))!;
        Assert.Equal("bert", (string?)written["model_type"]);
        Assert.Equal(16, (int?)written["hidden_size"]);
        Assert.Null(written["position_encoding"]);
        Assert.False((bool?)JsonNode.Parse(File.ReadAllText(temp.File("tokenizer_config.json")))!["do_lower_case"]);
        Assert.Equal(TinyText.Vocabulary.Count, File.ReadAllLines(temp.File("vocab.txt")).Length);
    }

    [Fact]
    public void ConfigJsonAsTransformersWritesItIsRead()
    {
        using var temp = new TempDirectory();
        using var original = new BertEncoder(Tiny(), new Generator(6, CPU));
        HuggingFaceCheckpoint.Save(original, TinyText.Vocabulary, temp.Path);
        File.Delete(temp.File("tokenizer_config.json"));
        // all-MiniLM-L6-v2's config.json with the tiny sizes: every field transformers writes, most of them unknown to BertConfig.
        File.WriteAllText(temp.File("config.json"), $$"""
            {
              "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
              "architectures": ["BertModel"],
              "attention_probs_dropout_prob": 0.1,
              "gradient_checkpointing": false,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 16,
              "initializer_range": 0.02,
              "intermediate_size": 32,
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 32,
              "model_type": "bert",
              "num_attention_heads": 2,
              "num_hidden_layers": 2,
              "pad_token_id": 0,
              "position_embedding_type": "absolute",
              "transformers_version": "4.8.2",
              "type_vocab_size": 2,
              "use_cache": true,
              "vocab_size": {{TinyText.Vocabulary.Count}}
            }
            """);

        var (checkpoint, _, output) = LoadAndRun(temp.Path);
        var config = checkpoint.Config;
        Assert.Equal((TinyText.Vocabulary.Count, 16, 2, 2, 32, 32, 2), (config.VocabSize, config.HiddenSize, config.Layers, config.Heads, config.IntermediateSize, config.MaxPositions, config.TypeVocabSize));
        Assert.Equal((1e-12, 0.1, 0.1, "gelu"), (config.LayerNormEpsilon, config.HiddenDropout, config.AttentionDropout, config.HiddenActivation));
        Assert.Equal(PositionEncoding.Learned, config.PositionEncoding);
        Assert.True(config.LowerCase); // transformers' default when no file says
        Assert.Equal(Run(original), output);
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("pytorch_model.bin")]
    public void TaskModelLayoutLoadsWithPoolerHeadsAndPositionIdsIgnored(string file)
    {
        using var temp = new TempDirectory();
        using var original = new BertEncoder(Tiny(), new Generator(5, CPU));
        HuggingFaceCheckpoint.Save(original, TinyText.Vocabulary, temp.Path);
        File.Delete(temp.File("model.safetensors"));
        // The way BertForPreTraining/BertForSequenceClassification save: "bert." prefix, pooler, position_ids buffer, heads;
        // and LayerNorm gamma/beta as in checkpoints converted from the original TensorFlow BERT.
        using var scope = NewDisposeScope();
        var weights = original.state_dict().ToDictionary(
            kv => "bert." + kv.Key.Replace("embeddings.LayerNorm.weight", "embeddings.LayerNorm.gamma").Replace("embeddings.LayerNorm.bias", "embeddings.LayerNorm.beta"),
            kv => kv.Value);
        weights["bert.embeddings.position_ids"] = arange(32L).unsqueeze(0);
        weights["bert.pooler.dense.weight"] = zeros(16, 16);
        weights["bert.pooler.dense.bias"] = zeros(16);
        weights["cls.predictions.transform.dense.weight"] = zeros(16, 16);
        weights["cls.predictions.decoder.weight"] = zeros(TinyText.Vocabulary.Count, 16);
        weights["classifier.weight"] = zeros(2, 16);
        if (file.EndsWith(".bin", StringComparison.Ordinal))
            PyTorchPickler.PickleStateDict(temp.File(file), weights);
        else
            Safetensors.SaveStateDict(temp.File(file), weights);

        var (checkpoint, report, output) = LoadAndRun(temp.Path);
        Assert.Equal(temp.File(file), checkpoint.WeightsPath);
        Assert.Equal(Run(original), output);
        Assert.Equal(original.state_dict().Count, report.LoadedKeys.Count);
        Assert.Equal(new[] { "bert.embeddings.position_ids", "bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.weight", "cls.predictions.decoder.weight", "cls.predictions.transform.dense.weight" },
            report.IgnoredKeys.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("task head, not part of the encoder", report.IgnoredKeys["classifier.weight"]);
    }

    [Fact]
    public void MissingFolderAndFilesAreNamed()
    {
        using var temp = new TempDirectory();
        var folder = Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceCheckpoint.Load(temp.File("nothing")));
        Assert.Equal($"Checkpoint folder '{temp.File("nothing")}' does not exist.", folder.Message);

        using var encoder = new BertEncoder(Tiny());
        HuggingFaceCheckpoint.Save(encoder, TinyText.Vocabulary, temp.Path);
        foreach (string name in new[] { "vocab.txt", "config.json" })
        {
            File.Move(temp.File(name), temp.File(name + ".away"));
            var missing = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(temp.Path));
            Assert.Equal($"Checkpoint folder '{temp.Path}' has no {name}.", missing.Message);
            Assert.Equal(temp.File(name), missing.FileName);
            File.Move(temp.File(name + ".away"), temp.File(name));
        }

        File.Move(temp.File("model.safetensors"), temp.File("model-00001-of-00002.safetensors"));
        File.WriteAllText(temp.File("model.safetensors.index.json"), "{}");
        var weights = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.Equal($"Checkpoint folder '{temp.Path}' has neither model.safetensors nor pytorch_model.bin. It has sharded weights (*.index.json), " +
            "which are not supported; save the model unsharded (save_pretrained with a larger max_shard_size).", weights.Message);
    }

    [Fact]
    public void ConfigurationThatDoesNotFitIsRejected()
    {
        using var temp = new TempDirectory();
        using var encoder = new BertEncoder(Tiny());
        HuggingFaceCheckpoint.Save(encoder, TinyText.Vocabulary, temp.Path);
        string configPath = temp.File("config.json");
        string saved = File.ReadAllText(configPath);

        File.WriteAllLines(temp.File("vocab.txt"), TinyText.Vocabulary.Take(10));
        var vocab = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.Equal($"'{temp.File("vocab.txt")}' has 10 entries but config.json says vocab_size = {TinyText.Vocabulary.Count}; the vocabulary does not belong to these weights.", vocab.Message);
        File.WriteAllLines(temp.File("vocab.txt"), TinyText.Vocabulary);

        File.WriteAllText(configPath, saved.Replace("\"model_type\": \"bert\"", "\"model_type\": \"roberta\""));
        var family = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.Equal($"'{configPath}' describes a 'roberta' model; only BERT checkpoints (model_type \"bert\") can be loaded into BertEncoder.", family.Message);

        File.WriteAllText(configPath, saved.Replace("\"absolute\"", "\"relative_key\""));
        var positions = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.Contains("position_embedding_type \"relative_key\"", positions.Message);

        File.WriteAllText(configPath, saved.Replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3"));
        var heads = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.StartsWith($"'{configPath}': hidden_size 16 must be divisible by num_attention_heads 3.", heads.Message);

        File.WriteAllText(configPath, "{ \"hidden_size\": \"wide\" }");
        var json = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(temp.Path));
        Assert.StartsWith($"'{configPath}' is not a valid BERT config.json:", json.Message);
    }

    [Fact]
    public void WeightsThatDoNotFitTheConfigurationNameTheKeyAndShapes()
    {
        using var temp = new TempDirectory();
        using var encoder = new BertEncoder(Tiny(), new Generator(7, CPU));
        HuggingFaceCheckpoint.Save(encoder, TinyText.Vocabulary, temp.Path);
        string weightsPath = temp.File("model.safetensors");
        const string Fix = "The weights do not fit config.json; check that config.json belongs to them.";

        string saved = File.ReadAllText(temp.File("config.json"));
        void WriteConfig(string field, int value)
        {
            var json = JsonNode.Parse(saved)!;
            json[field] = value;
            File.WriteAllText(temp.File("config.json"), json.ToJsonString());
        }
        InvalidDataException LoadFails()
        {
            var checkpoint = HuggingFaceCheckpoint.Load(temp.Path);
            using var target = new BertEncoder(checkpoint.Config);
            return Assert.Throws<InvalidDataException>(() => checkpoint.LoadInto(target));
        }

        WriteConfig("intermediate_size", 64);
        Assert.Equal($"'{weightsPath}': 'encoder.layer.0.intermediate.dense.weight' has shape [32, 16] but the encoder's is [64, 16]. {Fix}", LoadFails().Message);

        WriteConfig("num_hidden_layers", 3);
        Assert.Equal($"'{weightsPath}' has no weight for the encoder's 'encoder.layer.2.attention.self.query.weight' [16, 16]. {Fix}", LoadFails().Message);

        WriteConfig("num_hidden_layers", 1);
        Assert.Equal($"'{weightsPath}' has 'encoder.layer.1.attention.output.LayerNorm.bias' [16], which the encoder does not have. {Fix}", LoadFails().Message);

        File.WriteAllText(temp.File("config.json"), saved);
        using (var scope = NewDisposeScope())
        {
            var both = encoder.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
            both["bert.embeddings.word_embeddings.weight"] = both["embeddings.word_embeddings.weight"];
            Safetensors.SaveStateDict(weightsPath, both);
        }
        var duplicate = LoadFails().Message;
        Assert.StartsWith($"'{weightsPath}' has both '", duplicate);
        Assert.Contains("'bert.embeddings.word_embeddings.weight'", duplicate);
        Assert.EndsWith(", which are the same encoder weight 'embeddings.word_embeddings.weight'.", duplicate);
    }

    [Fact]
    public void SaveRejectsWhatACheckpointCannotHold()
    {
        using var temp = new TempDirectory();
        using var sinusoidal = new BertEncoder(BertConfig.Small(TinyText.Vocabulary.Count, layers: 1, hidden: 16, heads: 2, maxPositions: 32));
        var positions = Assert.Throws<ArgumentException>(() => HuggingFaceCheckpoint.Save(sinusoidal, TinyText.Vocabulary, temp.Path));
        Assert.StartsWith("The encoder uses sinusoidal positions;", positions.Message);

        using var encoder = new BertEncoder(Tiny());
        var vocabulary = Assert.Throws<ArgumentException>(() => HuggingFaceCheckpoint.Save(encoder, TinyText.Vocabulary.Take(5).ToList(), temp.Path));
        Assert.StartsWith($"The vocabulary has 5 entries but the encoder's vocab_size is {TinyText.Vocabulary.Count}.", vocabulary.Message);
        Assert.Empty(Directory.GetFiles(temp.Path));
    }
}
