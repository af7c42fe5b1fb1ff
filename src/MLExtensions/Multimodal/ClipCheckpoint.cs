using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLExtensions.Multimodal;

/// <summary>
/// Finds the files of a CLIP checkpoint folder and reads its configuration: Hugging Face's <c>config.json</c>
/// (<c>CLIPModel</c>), or OpenAI's constructor arguments in <c>openai_config.json</c> (the arguments of
/// <c>clip/model.py</c>'s <c>CLIP(...)</c>: <c>embed_dim</c>, <c>image_resolution</c>, <c>vision_layers</c>, …).
/// </summary>
internal sealed record ClipCheckpoint(string Folder, ClipConfig Config, string WeightsPath, string ConfigPath)
{
    public const string HuggingFaceConfigFile = "config.json";
    public const string OpenAiConfigFile = "openai_config.json";
    public const string VocabularyFile = "vocab.json";
    public const string MergesFile = "merges.txt";

    // Looked for in this order: Hugging Face's names first, then OpenAI's state dict saved as safetensors or with torch.save.
    private static readonly string[] WeightFiles =
        { "model.safetensors", "pytorch_model.bin", "openai_state_dict.safetensors", "openai_state_dict.pt", "openai_state_dict.pth" };

    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">No configuration or no weights (names what was looked for).</exception>
    /// <exception cref="InvalidDataException">The configuration is not a ViT CLIP model.</exception>
    public static ClipCheckpoint Find(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"CLIP checkpoint folder '{folder}' does not exist.");
        string hf = Path.Combine(folder, HuggingFaceConfigFile), openAi = Path.Combine(folder, OpenAiConfigFile);
        ClipConfig config;
        string configPath;
        if (File.Exists(hf))
            (config, configPath) = (ReadHuggingFace(hf), hf);
        else if (File.Exists(openAi))
            (config, configPath) = (ReadOpenAi(openAi), openAi);
        else
            throw new FileNotFoundException(
                $"'{folder}' is not a CLIP checkpoint folder: it has neither {HuggingFaceConfigFile} (Hugging Face CLIPModel) nor {OpenAiConfigFile} " +
                "(the CLIP(...) constructor arguments of OpenAI's clip/model.py).", hf);

        string? weights = WeightFiles.Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists);
        if (weights is null)
        {
            string sharded = File.Exists(Path.Combine(folder, "model.safetensors.index.json")) || File.Exists(Path.Combine(folder, "pytorch_model.bin.index.json"))
                ? " It has sharded weights (*.index.json), which are not supported; save the model unsharded." : "";
            throw new FileNotFoundException($"'{folder}' is not a complete CLIP checkpoint folder: it has no weights file (looked for {string.Join(", ", WeightFiles)}).{sharded}",
                Path.Combine(folder, WeightFiles[0]));
        }
        return new ClipCheckpoint(folder, config, weights, configPath);
    }

    /// <summary>The tokenizer from the folder's vocab.json and merges.txt.</summary>
    /// <exception cref="FileNotFoundException">A tokenizer file is missing (names it).</exception>
    public ClipTokenizer ReadTokenizer()
    {
        foreach (string file in new[] { VocabularyFile, MergesFile })
        {
            string path = Path.Combine(Folder, file);
            if (!File.Exists(path))
                throw new FileNotFoundException($"'{Folder}' is not a complete CLIP checkpoint folder: it has no {file} (the tokenizer needs {VocabularyFile} and {MergesFile}).", path);
        }
        return ClipTokenizer.FromFiles(Path.Combine(Folder, VocabularyFile), Path.Combine(Folder, MergesFile), Config.Text.MaxPositions);
    }

    private static ClipConfig ReadHuggingFace(string path)
    {
        var json = Parse(path);
        string? modelType = Text(json, "model_type");
        if (modelType is not (null or "clip"))
            throw new InvalidDataException($"'{path}' describes a '{modelType}' model; ClipModel loads CLIP checkpoints (model_type \"clip\").");
        var text = json["text_config"] as JsonObject ?? new JsonObject();
        var vision = json["vision_config"] as JsonObject ?? new JsonObject();
        string? visionType = Text(vision, "model_type");
        if (visionType is not (null or "clip_vision_model"))
            throw new InvalidDataException($"'{path}': vision_config has model_type \"{visionType}\"; only ViT image towers (\"clip_vision_model\") are supported.");

        // Defaults are those of Hugging Face's CLIPTextConfig / CLIPVisionConfig (ViT-B/32), which omit unchanged fields.
        int eos = Int(text, "eos_token_id", 2, path);
        var config = new ClipConfig
        {
            ProjectionDim = Int(json, "projection_dim", 512, path),
            Text = new ClipTextConfig
            {
                VocabSize = Int(text, "vocab_size", 49408, path),
                HiddenSize = Int(text, "hidden_size", 512, path),
                IntermediateSize = Int(text, "intermediate_size", 2048, path),
                Layers = Int(text, "num_hidden_layers", 12, path),
                Heads = Int(text, "num_attention_heads", 8, path),
                MaxPositions = Int(text, "max_position_embeddings", 77, path),
                Activation = Activation(text, path, "text_config"),
                LayerNormEps = Double(text, "layer_norm_eps", 1e-5, path),
                EosTokenId = eos == 2 ? 49407 : eos,
                // Hugging Face keeps the argmax rule for configs saved before eos_token_id was set properly (it was 2).
                Pooling = eos == 2 ? ClipTextPooling.ArgmaxId : ClipTextPooling.FirstEosToken,
            },
            Vision = new ClipVisionConfig
            {
                HiddenSize = Int(vision, "hidden_size", 768, path),
                IntermediateSize = Int(vision, "intermediate_size", 3072, path),
                Layers = Int(vision, "num_hidden_layers", 12, path),
                Heads = Int(vision, "num_attention_heads", 12, path),
                Channels = Int(vision, "num_channels", 3, path),
                ImageSize = Int(vision, "image_size", 224, path),
                PatchSize = Int(vision, "patch_size", 32, path),
                Activation = Activation(vision, path, "vision_config"),
                LayerNormEps = Double(vision, "layer_norm_eps", 1e-5, path),
            },
        };
        return Validated(config, path);
    }

    private static ClipConfig ReadOpenAi(string path)
    {
        var json = Parse(path);
        if (json["vision_layers"] is JsonArray)
            throw new InvalidDataException($"'{path}': vision_layers is a list, which describes OpenAI's ModifiedResNet image tower (RN50, …); only ViT image towers are supported.");
        int visionWidth = Int(json, "vision_width", null, path);
        int textWidth = Int(json, "transformer_width", null, path);
        var config = new ClipConfig
        {
            ProjectionDim = Int(json, "embed_dim", null, path),
            Text = new ClipTextConfig
            {
                VocabSize = Int(json, "vocab_size", null, path),
                HiddenSize = textWidth,
                IntermediateSize = 4 * textWidth, // model.py's mlp width
                Layers = Int(json, "transformer_layers", null, path),
                Heads = Int(json, "transformer_heads", null, path),
                MaxPositions = Int(json, "context_length", null, path),
                Activation = ClipActivation.QuickGelu,
                Pooling = ClipTextPooling.ArgmaxId, // model.py pools at argmax(ids)
            },
            Vision = new ClipVisionConfig
            {
                HiddenSize = visionWidth,
                IntermediateSize = 4 * visionWidth,
                Layers = Int(json, "vision_layers", null, path),
                Heads = Int(json, "vision_heads", visionWidth / 64, path), // model.py fixes vision_width // 64
                ImageSize = Int(json, "image_resolution", null, path),
                PatchSize = Int(json, "vision_patch_size", null, path),
                Activation = ClipActivation.QuickGelu,
            },
        };
        return Validated(config, path);
    }

    private static ClipConfig Validated(ClipConfig config, string path)
    {
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

    private static ClipActivation Activation(JsonObject json, string path, string section) => (Text(json, "hidden_act") ?? "quick_gelu") switch
    {
        "quick_gelu" => ClipActivation.QuickGelu,
        "gelu" => ClipActivation.Gelu,
        var other => throw new InvalidDataException($"'{path}': {section}.hidden_act is \"{other}\"; supported: \"quick_gelu\", \"gelu\"."),
    };

    private static JsonObject Parse(string path)
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

    private static string? Text(JsonObject json, string name) =>
        json[name]?.GetValueKind() == JsonValueKind.String ? json[name]!.GetValue<string>() : null;

    private static int Int(JsonObject json, string name, int? fallback, string path)
    {
        var node = json[name];
        if (node is null || node.GetValueKind() == JsonValueKind.Null)
            return fallback ?? throw new InvalidDataException($"'{path}' has no '{name}'.");
        if (node.GetValueKind() != JsonValueKind.Number)
            throw new InvalidDataException($"'{path}': '{name}' must be a number; found {node.ToJsonString()}.");
        return node.GetValue<int>();
    }

    private static double Double(JsonObject json, string name, double fallback, string path)
    {
        var node = json[name];
        if (node is null || node.GetValueKind() == JsonValueKind.Null)
            return fallback;
        if (node.GetValueKind() != JsonValueKind.Number)
            throw new InvalidDataException($"'{path}': '{name}' must be a number; found {node.ToJsonString()}.");
        return node.GetValue<double>();
    }
}
