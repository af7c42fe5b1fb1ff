using System.Text.Json;
using MLExtensions.Core;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// A Hugging Face BERT-family checkpoint folder: <c>config.json</c>, <c>vocab.txt</c> (and optionally
/// <c>tokenizer_config.json</c> for <c>do_lower_case</c>), and weights in <c>model.safetensors</c> or
/// <c>pytorch_model.bin</c>. Loaded from disk only; nothing is downloaded.
/// </summary>
public sealed class HuggingFaceCheckpoint
{
    private readonly string _weightsPath;

    private HuggingFaceCheckpoint(string folder, BertConfig config, IReadOnlyList<string> vocabulary, string weightsPath)
    {
        Folder = folder;
        Config = config;
        Vocabulary = vocabulary;
        _weightsPath = weightsPath;
    }

    /// <summary>The checkpoint folder.</summary>
    public string Folder { get; }

    /// <summary>The encoder configuration from config.json.</summary>
    public BertConfig Config { get; }

    /// <summary>The vocabulary from vocab.txt.</summary>
    public IReadOnlyList<string> Vocabulary { get; }

    /// <summary>Reads and checks the configuration and vocabulary (weights are read by <see cref="LoadInto"/>).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json, vocab.txt or the weights file is missing (names the path).</exception>
    /// <exception cref="InvalidDataException">config.json cannot be read, or the vocabulary does not match <c>vocab_size</c>.</exception>
    public static HuggingFaceCheckpoint Load(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Checkpoint folder '{folder}' does not exist.");
        string configPath = Required(folder, "config.json");
        BertConfig config;
        try
        {
            config = JsonSerializer.Deserialize<BertConfig>(File.ReadAllText(configPath)) ?? throw new InvalidDataException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{configPath}' is not a valid BERT config.json: {e.Message}", e);
        }
        string tokenizerConfig = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(tokenizerConfig))
        {
            using var document = JsonDocument.Parse(File.ReadAllText(tokenizerConfig));
            if (document.RootElement.TryGetProperty("do_lower_case", out var lower) && lower.ValueKind is JsonValueKind.True or JsonValueKind.False)
                config.LowerCase = lower.GetBoolean();
        }
        config.PositionEncoding = PositionEncoding.Learned;
        config.Validate();
        string vocabPath = Required(folder, "vocab.txt");
        IReadOnlyList<string> vocabulary;
        using (var stream = File.OpenRead(vocabPath))
            vocabulary = WordPieceTokenizer.ReadVocabulary(stream);
        if (vocabulary.Count != config.VocabSize)
            throw new InvalidDataException($"'{vocabPath}' has {vocabulary.Count} entries but config.json says vocab_size = {config.VocabSize}; the vocabulary does not belong to these weights.");
        string weights = new[] { "model.safetensors", "pytorch_model.bin" }.Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"Checkpoint folder '{folder}' has neither model.safetensors nor pytorch_model.bin.", Path.Combine(folder, "model.safetensors"));
        return new HuggingFaceCheckpoint(folder, config, vocabulary, weights);
    }

    /// <summary>
    /// Copies the checkpoint's weights into <paramref name="encoder"/>. A leading <c>bert.</c> prefix is removed; the
    /// pooler, task heads (<c>cls.*</c>, <c>classifier.*</c>) and <c>position_ids</c> are ignored.
    /// </summary>
    /// <exception cref="InvalidDataException">A weight is missing or has another shape (names the key and both shapes).</exception>
    public void LoadInto(BertEncoder encoder)
    {
        using var scope = torch.NewDisposeScope();
        var format = _weightsPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? WeightFileFormat.Safetensors : WeightFileFormat.PyTorch;
        var file = StateDictFile.Read(_weightsPath, format)
            .ToDictionary(kv => kv.Key.StartsWith("bert.", StringComparison.Ordinal) ? kv.Key[5..] : kv.Key, kv => kv.Value);
        var target = encoder.state_dict();
        foreach (var (key, tensor) in target)
        {
            if (!file.TryGetValue(key, out var source))
                throw new InvalidDataException($"'{_weightsPath}' has no weight for '{key}' {Shape(tensor)}; it does not fit config.json's architecture.");
            if (!source.shape.SequenceEqual(tensor.shape))
                throw new InvalidDataException($"'{_weightsPath}': '{key}' has shape {Shape(source)} but the configuration needs {Shape(tensor)}.");
        }
        using var noGrad = torch.no_grad();
        foreach (var (key, tensor) in target)
            tensor.copy_(file[key].to(tensor.dtype));
    }

    /// <summary>Writes <paramref name="encoder"/> as a checkpoint folder (config.json, vocab.txt, model.safetensors) that <see cref="Load"/> and Hugging Face read.</summary>
    public static void Save(BertEncoder encoder, IReadOnlyList<string> vocabulary, string folder)
    {
        if (vocabulary.Count != encoder.Config.VocabSize)
            throw new ArgumentException($"The vocabulary has {vocabulary.Count} entries but the encoder's vocab_size is {encoder.Config.VocabSize}.", nameof(vocabulary));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(encoder.Config, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocabulary);
        encoder.save_safetensors(Path.Combine(folder, "model.safetensors"));
    }

    private static string Required(string folder, string file)
    {
        string path = Path.Combine(folder, file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Checkpoint folder '{folder}' has no {file}.", path);
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
