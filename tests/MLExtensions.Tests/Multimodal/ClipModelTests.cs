using MLExtensions.Multimodal;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Multimodal;

public class ClipModelTests
{
    private const float Tolerance = 1e-4f;

    [Theory]
    [InlineData(ClipFixture.Layout.HuggingFace)]
    [InlineData(ClipFixture.Layout.OpenAi)]
    public void Both_key_layouts_reproduce_openai_features_and_logits(ClipFixture.Layout layout)
    {
        using var dir = new TempDirectory();
        ClipFixture.WriteFolder(dir.Path, layout);
        using var model = ClipModel.Load(dir.Path);

        var images = model.EncodeImages(ClipFixture.Flat("images.pixel_values"));
        var texts = model.EncodeTexts(ClipFixture.Texts());
        AssertClose(ClipFixture.Matrix("image_features"), images);
        AssertClose(ClipFixture.Matrix("text_features"), texts);

        Assert.Equal(ClipFixture.Reference["logit_scale_exp"]!.GetValue<float>(), model.LogitScale, 4);
        var logits = images.Select(i => texts.Select(t => model.LogitScale * Cosine(i, t)).ToArray()).ToArray();
        AssertClose(ClipFixture.Matrix("logits_per_image"), logits);
    }

    [Fact]
    public void Tokens_equal_the_reference_ids()
    {
        var expected = ClipFixture.Matrix("tokens.ids");
        var texts = ClipFixture.Texts();
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i].Select(v => (long)v), ClipFixture.Tokenizer.Encode(texts[i]));
    }

    [Fact]
    public void Position_ids_of_old_checkpoints_are_ignored_and_extra_or_missing_tensors_are_named()
    {
        using var dir = new TempDirectory();
        ClipFixture.WriteFolder(dir.Path, ClipFixture.Layout.HuggingFace);
        string weights = Path.Combine(dir.Path, "model.safetensors");
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            var tensors = TorchSharp.PyBridge.Safetensors.LoadStateDict(weights);
            tensors["text_model.embeddings.position_ids"] = TorchSharp.torch.arange(77L).unsqueeze(0);
            TorchSharp.PyBridge.Safetensors.SaveStateDict(weights, tensors);
            using (ClipModel.Load(dir.Path)) { }

            tensors["text_model.extra.weight"] = TorchSharp.torch.zeros(3);
            TorchSharp.PyBridge.Safetensors.SaveStateDict(weights, tensors);
            var extra = Assert.Throws<InvalidDataException>(() => ClipModel.Load(dir.Path));
            Assert.Contains("text_model.extra.weight", extra.Message);

            tensors.Remove("text_model.extra.weight");
            tensors.Remove("vision_model.post_layernorm.bias");
            TorchSharp.PyBridge.Safetensors.SaveStateDict(weights, tensors);
            var missing = Assert.Throws<InvalidDataException>(() => ClipModel.Load(dir.Path));
            Assert.Contains("vision_model.post_layernorm.bias", missing.Message);
        }
    }

    [Fact]
    public void A_config_that_does_not_fit_the_weights_names_the_tensor_and_both_shapes()
    {
        using var dir = new TempDirectory();
        ClipFixture.WriteFolder(dir.Path, ClipFixture.Layout.HuggingFace);
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"projection_dim\": 32", "\"projection_dim\": 24"));
        var e = Assert.Throws<InvalidDataException>(() => ClipModel.Load(dir.Path));
        Assert.Contains("visual_projection.weight", e.Message);
        Assert.Contains("[32, 64]", e.Message);
        Assert.Contains("[24, 64]", e.Message);
    }

    [Fact]
    public void A_folder_that_is_not_a_clip_checkpoint_says_what_is_missing()
    {
        using var dir = new TempDirectory();
        var noConfig = Assert.Throws<FileNotFoundException>(() => ClipModel.Load(dir.Path));
        Assert.Contains("config.json", noConfig.Message);
        Assert.Contains("openai_config.json", noConfig.Message);

        ClipFixture.WriteFolder(dir.Path, ClipFixture.Layout.HuggingFace, "model.safetensors");
        var noWeights = Assert.Throws<FileNotFoundException>(() => ClipModel.Load(dir.Path));
        Assert.Contains("model.safetensors", noWeights.Message);

        using var dir2 = new TempDirectory();
        ClipFixture.WriteFolder(dir2.Path, ClipFixture.Layout.HuggingFace, "merges.txt");
        var noMerges = Assert.Throws<FileNotFoundException>(() => ClipModel.Load(dir2.Path));
        Assert.Contains("merges.txt", noMerges.Message);
    }

    [Fact]
    public void Non_vit_vision_configs_are_rejected_by_name()
    {
        using var dir = new TempDirectory();
        ClipFixture.WriteFolder(dir.Path, ClipFixture.Layout.OpenAi);
        string config = Path.Combine(dir.Path, "openai_config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"vision_layers\": 2", "\"vision_layers\": [3, 4, 6, 3]"));
        var resnet = Assert.Throws<InvalidDataException>(() => ClipModel.Load(dir.Path));
        Assert.Contains("ModifiedResNet", resnet.Message);

        using var dir2 = new TempDirectory();
        ClipFixture.WriteFolder(dir2.Path, ClipFixture.Layout.HuggingFace);
        string hf = Path.Combine(dir2.Path, "config.json");
        File.WriteAllText(hf, File.ReadAllText(hf).Replace("\"clip_vision_model\"", "\"siglip_vision_model\""));
        var other = Assert.Throws<InvalidDataException>(() => ClipModel.Load(dir2.Path));
        Assert.Contains("siglip_vision_model", other.Message);
    }

    [Fact]
    public void Eos_pooling_rule_and_activation_follow_the_config()
    {
        using var dir = new TempDirectory();
        ClipFixture.WriteFolder(dir.Path, ClipFixture.Layout.HuggingFace);
        string config = Path.Combine(dir.Path, "config.json");
        string original = File.ReadAllText(config);
        var texts = new[] { "a cat", "a dog" };
        var reference = new[] { ClipFixture.Matrix("text_features")[0] };

        // Legacy configs (eos_token_id 2) pool at the largest id, as OpenAI's code: same features as the reference.
        File.WriteAllText(config, original.Replace("\"eos_token_id\": 49407", "\"eos_token_id\": 2"));
        using (var model = ClipModel.Load(dir.Path))
            AssertClose(reference, model.EncodeTexts(new[] { "a photo of a cat." }));

        // The current rule pools at the first eos_token_id: with the id of "a" (320) it reads position 1, which under the
        // causal mask has seen only <|startoftext|> a, so two texts starting with "a" get identical features.
        File.WriteAllText(config, original.Replace("\"eos_token_id\": 49407", "\"eos_token_id\": 320"));
        using (var model = ClipModel.Load(dir.Path))
        {
            var pooled = model.EncodeTexts(texts);
            AssertClose(new[] { pooled[0] }, new[] { pooled[1] }, 1e-6f);
        }
        File.WriteAllText(config, original);
        using (var model = ClipModel.Load(dir.Path))
        {
            var pooled = model.EncodeTexts(texts);
            Assert.True(MaxDifference(pooled[0], pooled[1]) > 1e-3f, "texts that differ after the first token must differ at the end token");
        }

        File.WriteAllText(config, original.Replace("quick_gelu", "gelu"));
        using (var model = ClipModel.Load(dir.Path))
            Assert.True(MaxDifference(reference[0], model.EncodeTexts(new[] { "a photo of a cat." })[0]) > 1e-3f, "gelu must change the features");
    }

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));

    internal static void AssertClose(float[][] expected, float[][] actual, float tolerance = Tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Length, actual[i].Length);
            for (int j = 0; j < expected[i].Length; j++)
                Assert.True(Math.Abs(expected[i][j] - actual[i][j]) <= tolerance, $"[{i}][{j}]: expected {expected[i][j]}, found {actual[i][j]}");
        }
    }

    internal static float Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return (float)(dot / Math.Sqrt(na * nb));
    }
}
