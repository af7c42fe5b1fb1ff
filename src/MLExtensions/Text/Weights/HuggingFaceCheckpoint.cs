using System.Text.Json;
using System.Text.Json.Nodes;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// A Hugging Face BERT checkpoint folder (<c>model_type</c> "bert": BERT, MiniLM, and other models saved as
/// <c>BertModel</c> or one of its task classes): <c>config.json</c>, <c>vocab.txt</c>, optionally
/// <c>tokenizer_config.json</c> (for <c>do_lower_case</c>), and the weights in <c>model.safetensors</c> or
/// <c>pytorch_model.bin</c>. Read from disk only; nothing is downloaded.
/// </summary>
/// <remarks>
/// <para>
/// Weight names are Hugging Face's <c>BertModel</c> names, which <see cref="BertEncoder"/> uses too. A leading
/// <c>bert.</c> (task models such as <c>BertForSequenceClassification</c>) is removed, and the LayerNorm names of old
/// TensorFlow conversions (<c>gamma</c>, <c>beta</c>) are read as <c>weight</c>, <c>bias</c>, as Hugging Face does.
/// The pooler, task heads (<c>cls.*</c>, <c>classifier.*</c>, …) and the <c>position_ids</c> buffer are ignored and
/// listed in the <see cref="EncoderWeightLoadReport"/>.
/// </para>
/// <para>
/// Not supported: other architectures (RoBERTa, DistilBERT, … have other names or position schemes), relative
/// position embeddings, and sharded weights (<c>*.index.json</c>); each is rejected with a message saying so.
/// </para>
/// </remarks>
public sealed class HuggingFaceCheckpoint
{
    private const string ConfigFile = "config.json";
    private const string VocabularyFile = "vocab.txt";
    private const string TokenizerConfigFile = "tokenizer_config.json";
    private const string SafetensorsFile = "model.safetensors";
    private const string PyTorchFile = "pytorch_model.bin";

    private HuggingFaceCheckpoint(string folder, BertConfig config, IReadOnlyList<string> vocabulary, string weightsPath)
    {
        Folder = folder;
        Config = config;
        Vocabulary = vocabulary;
        WeightsPath = weightsPath;
    }

    /// <summary>The checkpoint folder (full path).</summary>
    public string Folder { get; }

    /// <summary>The encoder configuration from config.json, with <see cref="BertConfig.LowerCase"/> from tokenizer_config.json when it says.</summary>
    public BertConfig Config { get; }

    /// <summary>The vocabulary from vocab.txt (line number = token id).</summary>
    public IReadOnlyList<string> Vocabulary { get; }

    /// <summary>The weights file that <see cref="LoadInto"/> reads: model.safetensors if present, else pytorch_model.bin.</summary>
    public string WeightsPath { get; }

    /// <summary>Reads and checks the configuration and the vocabulary, and finds the weights file (read later by <see cref="LoadInto"/>).</summary>
    /// <param name="folder">The checkpoint folder, e.g. a local copy of a Hugging Face model repository.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json, vocab.txt or the weights file is missing (names the path).</exception>
    /// <exception cref="InvalidDataException">config.json is unreadable, describes another architecture or invalid sizes, or the vocabulary's size is not <c>vocab_size</c>.</exception>
    public static HuggingFaceCheckpoint Load(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Checkpoint folder '{folder}' does not exist.");

        var config = ReadConfig(Required(folder, ConfigFile));
        string tokenizerConfig = Path.Combine(folder, TokenizerConfigFile);
        if (File.Exists(tokenizerConfig))
        {
            // do_lower_case belongs to the tokenizer; HF's default (true) applies when neither file says.
            var lower = ParseObject(tokenizerConfig)["do_lower_case"];
            if (lower?.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                config.LowerCase = lower.GetValue<bool>();
        }

        string vocabPath = Required(folder, VocabularyFile);
        IReadOnlyList<string> vocabulary;
        using (var stream = File.OpenRead(vocabPath))
            vocabulary = WordPieceTokenizer.ReadVocabulary(stream);
        if (vocabulary.Count != config.VocabSize)
            throw new InvalidDataException($"'{vocabPath}' has {vocabulary.Count} entries but config.json says vocab_size = {config.VocabSize}; the vocabulary does not belong to these weights.");

        return new HuggingFaceCheckpoint(folder, config, vocabulary, FindWeights(folder));
    }

    /// <summary>
    /// Copies the checkpoint's weights into <paramref name="encoder"/> (build it with <see cref="Config"/>). Every encoder
    /// tensor is overwritten, or none: names and shapes are checked first, in both directions (see the class remarks
    /// for the names that are renamed or ignored).
    /// </summary>
    /// <returns>The keys loaded, and the file's entries left out (pooler, heads, <c>position_ids</c>).</returns>
    /// <exception cref="InvalidDataException">The file cannot be read, or its weights do not fit the encoder (names the first mismatching key and both shapes).</exception>
    public EncoderWeightLoadReport LoadInto(BertEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        TorchNativeLoader.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var format = WeightsPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? WeightFileFormat.Safetensors : WeightFileFormat.PyTorch;
        var file = StateDictFile.Read(WeightsPath, format);

        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var ignored = new Dictionary<string, string>(StringComparer.Ordinal);
        var renamedFrom = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in file)
        {
            string key = EncoderKey(name);
            if (key == "embeddings.position_ids")
                ignored[name] = "position index buffer; the encoder computes positions";
            else if (key.StartsWith("pooler.", StringComparison.Ordinal))
                ignored[name] = "pooler, not part of the encoder";
            else if (!key.StartsWith("embeddings.", StringComparison.Ordinal) && !key.StartsWith("encoder.", StringComparison.Ordinal))
                ignored[name] = "task head, not part of the encoder";
            else if (renamedFrom.TryGetValue(key, out var other))
                throw new InvalidDataException($"'{WeightsPath}' has both '{other}' and '{name}', which are the same encoder weight '{key}'.");
            else
            {
                weights[key] = tensor;
                renamedFrom[key] = name;
            }
        }
        string fix = weights.Count == 0
            ? $"No entry starts with embeddings., encoder. or bert. (found e.g. '{file.Keys.FirstOrDefault()}'); the file is not a BERT checkpoint."
            : "The weights do not fit config.json; check that config.json belongs to them.";
        return EncoderStateDict.Copy(encoder, weights, ignored, $"'{WeightsPath}'", fix);
    }

    /// <summary>
    /// Writes <paramref name="encoder"/> as a Hugging Face checkpoint folder — config.json (a <c>BertModel</c> config),
    /// tokenizer_config.json (<c>do_lower_case</c>), vocab.txt and model.safetensors — that <see cref="Load"/> and
    /// Hugging Face's <c>BertModel.from_pretrained</c> read. Existing files of those names are replaced.
    /// </summary>
    /// <param name="encoder">The encoder; its <see cref="BertEncoder.Config"/> is written. Must use learned positions.</param>
    /// <param name="vocabulary">The vocabulary, <c>vocab_size</c> lines.</param>
    /// <param name="folder">The folder; created if needed.</param>
    /// <exception cref="ArgumentException">The vocabulary size differs from the configuration's, or the encoder uses sinusoidal positions (BERT checkpoints have learned ones).</exception>
    public static void Save(BertEncoder encoder, IReadOnlyList<string> vocabulary, string folder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var config = encoder.Config;
        if (config.PositionEncoding != PositionEncoding.Learned)
            throw new ArgumentException("The encoder uses sinusoidal positions; a Hugging Face BERT checkpoint has learned position embeddings, so it cannot be saved as one.", nameof(encoder));
        if (vocabulary.Count != config.VocabSize)
            throw new ArgumentException($"The vocabulary has {vocabulary.Count} entries but the encoder's vocab_size is {config.VocabSize}.", nameof(vocabulary));

        Directory.CreateDirectory(folder);
        var hfConfig = new JsonObject
        {
            ["architectures"] = new JsonArray("BertModel"),
            ["model_type"] = "bert",
            ["position_embedding_type"] = "absolute",
        };
        foreach (var (name, value) in JsonSerializer.SerializeToNode(config)!.AsObject())
        {
            // The position scheme is ours (fixed above), and casing belongs in tokenizer_config.json.
            if (name is not ("position_encoding" or "do_lower_case"))
                hfConfig[name] = value?.DeepClone();
        }
        var indented = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(folder, ConfigFile), hfConfig.ToJsonString(indented));
        File.WriteAllText(Path.Combine(folder, TokenizerConfigFile),
            new JsonObject { ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = config.LowerCase }.ToJsonString(indented));
        File.WriteAllText(Path.Combine(folder, VocabularyFile), string.Join('\n', vocabulary) + "\n");
        encoder.save_safetensors(Path.Combine(folder, SafetensorsFile));
    }

    private static BertConfig ReadConfig(string path)
    {
        var json = ParseObject(path);
        // Other model types deserialize without error (unknown fields are skipped) into BERT defaults, which would
        // then fail on the weights with a confusing message: reject them here by name.
        string? modelType = json["model_type"]?.GetValueKind() == JsonValueKind.String ? json["model_type"]!.GetValue<string>() : null;
        if (modelType is not (null or "bert"))
            throw new InvalidDataException($"'{path}' describes a '{modelType}' model; only BERT checkpoints (model_type \"bert\") can be loaded into BertEncoder.");
        string? positions = json["position_embedding_type"]?.GetValueKind() == JsonValueKind.String ? json["position_embedding_type"]!.GetValue<string>() : null;
        if (positions is not (null or "absolute"))
            throw new InvalidDataException($"'{path}' uses position_embedding_type \"{positions}\"; BertEncoder supports only \"absolute\" (learned) positions.");

        BertConfig config;
        try
        {
            config = json.Deserialize<BertConfig>() ?? throw new JsonException("config.json is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid BERT config.json: {e.Message}", e);
        }
        config.PositionEncoding = PositionEncoding.Learned;
        try
        {
            config.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
        return config;
    }

    private static JsonObject ParseObject(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("The top level is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }

    private static string FindWeights(string folder)
    {
        // Hugging Face prefers safetensors when both are present, and so do we.
        foreach (string name in new[] { SafetensorsFile, PyTorchFile })
        {
            string path = Path.Combine(folder, name);
            if (File.Exists(path))
                return path;
        }
        string sharded = File.Exists(Path.Combine(folder, SafetensorsFile + ".index.json")) || File.Exists(Path.Combine(folder, PyTorchFile + ".index.json"))
            ? " It has sharded weights (*.index.json), which are not supported; save the model unsharded (save_pretrained with a larger max_shard_size)."
            : "";
        throw new FileNotFoundException($"Checkpoint folder '{folder}' has neither {SafetensorsFile} nor {PyTorchFile}.{sharded}", Path.Combine(folder, SafetensorsFile));
    }

    /// <summary>The encoder key for a checkpoint entry: without the task models' <c>bert.</c> prefix, old LayerNorm names modernized.</summary>
    private static string EncoderKey(string name)
    {
        string key = name.StartsWith("bert.", StringComparison.Ordinal) ? name["bert.".Length..] : name;
        if (key.EndsWith(".LayerNorm.gamma", StringComparison.Ordinal))
            return key[..^"gamma".Length] + "weight";
        if (key.EndsWith(".LayerNorm.beta", StringComparison.Ordinal))
            return key[..^"beta".Length] + "bias";
        return key;
    }

    private static string Required(string folder, string file)
    {
        string path = Path.Combine(folder, file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Checkpoint folder '{folder}' has no {file}.", path);
    }
}
