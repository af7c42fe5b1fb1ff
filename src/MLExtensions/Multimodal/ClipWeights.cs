using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Reads a CLIP state dict (Hugging Face <c>CLIPModel</c> names, or OpenAI's <c>clip/model.py</c> names) into a
/// <see cref="ClipNetwork"/>, strictly: every tensor the network has must be present with its shape, and no other
/// tensor may be left over. <c>position_ids</c> buffers of old Hugging Face checkpoints are ignored.
/// </summary>
internal static class ClipWeights
{
    /// <exception cref="InvalidDataException">The file cannot be read, or a tensor is missing, extra, or has another shape (names it).</exception>
    public static void LoadInto(ClipNetwork network, string path)
    {
        using var scope = torch.NewDisposeScope();
        // pytorch_model.bin is a torch.save zip like .pt files.
        var format = path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? WeightFileFormat.Safetensors : WeightFileFormat.PyTorch;
        var file = StateDictFile.Read(path, format);
        bool openAi = file.ContainsKey("visual.class_embedding") || file.ContainsKey("token_embedding.weight");
        var weights = openAi ? FromOpenAi(file, network.Config) : file;
        foreach (string key in weights.Keys.Where(k => k.EndsWith("position_ids", StringComparison.Ordinal)).ToList())
            weights.Remove(key); // old transformers releases saved the position index buffers

        var target = network.state_dict();
        string layout = openAi ? "OpenAI" : "Hugging Face";
        string fix = $"Check that {(openAi ? ClipCheckpoint.OpenAiConfigFile : ClipCheckpoint.HuggingFaceConfigFile)} belongs to these weights.";
        var missing = target.Keys.Where(k => !weights.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"'{path}' ({layout} names) has no tensor for {Describe(missing, target)}. {fix}");
        var extra = weights.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new InvalidDataException($"'{path}' ({layout} names) has tensors the model does not have: {Describe(extra, weights)}. {fix}");
        foreach (var (key, tensor) in target)
        {
            if (!weights[key].shape.SequenceEqual(tensor.shape))
                throw new InvalidDataException($"'{path}': '{key}' has shape {Shape(weights[key])} but the configuration gives {Shape(tensor)}. {fix}");
        }
        using (torch.no_grad())
        {
            foreach (var (key, tensor) in target)
                tensor.copy_(weights[key]); // converts float16 checkpoints
        }
    }

    /// <summary>Renames OpenAI's keys to Hugging Face's (transformers' conversion script): fused in_proj split into q/k/v, projections transposed.</summary>
    public static Dictionary<string, Tensor> FromOpenAi(IReadOnlyDictionary<string, Tensor> source, ClipConfig config)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in source)
        {
            switch (name)
            {
                case "token_embedding.weight": result["text_model.embeddings.token_embedding.weight"] = tensor; break;
                case "positional_embedding": result["text_model.embeddings.position_embedding.weight"] = tensor; break;
                case "ln_final.weight": result["text_model.final_layer_norm.weight"] = tensor; break;
                case "ln_final.bias": result["text_model.final_layer_norm.bias"] = tensor; break;
                case "text_projection": result["text_projection.weight"] = tensor.t(); break;
                case "logit_scale": result["logit_scale"] = tensor; break;
                case "visual.class_embedding": result["vision_model.embeddings.class_embedding"] = tensor; break;
                case "visual.conv1.weight": result["vision_model.embeddings.patch_embedding.weight"] = tensor; break;
                case "visual.positional_embedding": result["vision_model.embeddings.position_embedding.weight"] = tensor; break;
                case "visual.ln_pre.weight": result["vision_model.pre_layrnorm.weight"] = tensor; break;
                case "visual.ln_pre.bias": result["vision_model.pre_layrnorm.bias"] = tensor; break;
                case "visual.ln_post.weight": result["vision_model.post_layernorm.weight"] = tensor; break;
                case "visual.ln_post.bias": result["vision_model.post_layernorm.bias"] = tensor; break;
                case "visual.proj": result["visual_projection.weight"] = tensor.t(); break;
                default:
                    if (!MapBlock(name, tensor, "transformer.resblocks.", "text_model.encoder.layers.", result)
                        && !MapBlock(name, tensor, "visual.transformer.resblocks.", "vision_model.encoder.layers.", result))
                        result[name] = tensor; // left under its own name: reported as extra by the strict check
                    break;
            }
        }
        return result;
    }

    private static bool MapBlock(string name, Tensor tensor, string prefix, string target, Dictionary<string, Tensor> result)
    {
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        int dot = name.IndexOf('.', prefix.Length);
        if (dot < 0)
            return false;
        string layer = target + name[prefix.Length..dot] + ".";
        string rest = name[(dot + 1)..];
        switch (rest)
        {
            case "attn.in_proj_weight":
            case "attn.in_proj_bias":
            {
                string kind = rest.EndsWith("weight", StringComparison.Ordinal) ? "weight" : "bias";
                var parts = tensor.chunk(3, 0); // rows 0:w → q, w:2w → k, 2w:3w → v
                result[$"{layer}self_attn.q_proj.{kind}"] = parts[0];
                result[$"{layer}self_attn.k_proj.{kind}"] = parts[1];
                result[$"{layer}self_attn.v_proj.{kind}"] = parts[2];
                return true;
            }
        }
        string? mapped = rest switch
        {
            "attn.out_proj.weight" => "self_attn.out_proj.weight",
            "attn.out_proj.bias" => "self_attn.out_proj.bias",
            "ln_1.weight" => "layer_norm1.weight",
            "ln_1.bias" => "layer_norm1.bias",
            "ln_2.weight" => "layer_norm2.weight",
            "ln_2.bias" => "layer_norm2.bias",
            "mlp.c_fc.weight" => "mlp.fc1.weight",
            "mlp.c_fc.bias" => "mlp.fc1.bias",
            "mlp.c_proj.weight" => "mlp.fc2.weight",
            "mlp.c_proj.bias" => "mlp.fc2.bias",
            _ => null,
        };
        if (mapped is null)
            return false;
        result[layer + mapped] = tensor;
        return true;
    }

    private static string Describe(IReadOnlyList<string> keys, IReadOnlyDictionary<string, Tensor> tensors)
    {
        string shown = string.Join(", ", keys.Take(5).Select(k => $"'{k}' {Shape(tensors[k])}"));
        return keys.Count > 5 ? $"{shown} and {keys.Count - 5} more" : shown;
    }

    private static string Shape(Tensor tensor) => "[" + string.Join(", ", tensor.shape) + "]";
}
