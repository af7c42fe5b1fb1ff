using System.Text.Json;
using System.Text.Json.Nodes;
using MLExtensions.Multimodal;
using MLExtensions.Tests.Support;

namespace MLExtensions.Tests.Multimodal;

/// <summary>The tiny CLIP fixture (TestData/Clip, made by OpenAI's own code) and its reference outputs.</summary>
public static class ClipFixture
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "TestData", "Clip");

    public static string ModelFolder => Path.Combine(Root, "model-a");

    public static string TokenizerFolder => Path.Combine(Root, "tokenizer");

    private static readonly Lazy<JsonObject> ReferenceJson = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(ModelFolder, "reference.json")))!);

    internal static JsonObject Reference => ReferenceJson.Value;

    private static readonly Lazy<ClipTokenizer> SharedTokenizer = new(() =>
        ClipTokenizer.FromFiles(Path.Combine(TokenizerFolder, "vocab.json"), Path.Combine(TokenizerFolder, "merges.txt")));

    internal static ClipTokenizer Tokenizer => SharedTokenizer.Value;

    public enum Layout { HuggingFace, OpenAi }

    /// <summary>A checkpoint folder in one key layout: the layout's config and weights plus vocab.json and merges.txt.</summary>
    public static void WriteFolder(string folder, Layout layout, params string[] leaveOut)
    {
        Directory.CreateDirectory(folder);
        var files = layout == Layout.HuggingFace
            ? new[] { Path.Combine(ModelFolder, "config.json"), Path.Combine(ModelFolder, "model.safetensors") }
            : new[] { Path.Combine(ModelFolder, "openai_config.json"), Path.Combine(ModelFolder, "openai_state_dict.safetensors") };
        foreach (string file in files.Concat(new[] { Path.Combine(TokenizerFolder, "vocab.json"), Path.Combine(TokenizerFolder, "merges.txt") }))
        {
            if (!leaveOut.Contains(Path.GetFileName(file)))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }
    }

    private static readonly Lazy<string> SharedFolder = new(() =>
    {
        string folder = Path.Combine(Path.GetTempPath(), "mlext-tests-clip-" + Environment.ProcessId);
        if (!Directory.Exists(folder))
            WriteFolder(folder, Layout.HuggingFace);
        return folder;
    });

    /// <summary>A Hugging Face checkpoint folder shared by the tests of this process (read-only).</summary>
    public static string HuggingFaceFolder => SharedFolder.Value;

    private static readonly Lazy<ClipModel> SharedModel = new(() => ClipModel.Load(HuggingFaceFolder));

    /// <summary>The fixture model, loaded once per test process (scoring is thread-safe).</summary>
    internal static ClipModel Model => SharedModel.Value;

    public static float[] Flat(string path) => Node(path).AsArray().SelectMany(Values).ToArray();

    public static float[][] Matrix(string path) => Node(path).AsArray().Select(r => Values(r!).ToArray()).ToArray();

    public static byte[] ImagePixels() => Node("images.pixels_uint8").AsArray().Select(v => (byte)v!.GetValue<int>()).ToArray();

    public static string[] Texts() => Node("texts").AsArray().Select(v => v!.GetValue<string>()).ToArray();

    private static IEnumerable<float> Values(JsonNode? node) => node is JsonArray array ? array.SelectMany(Values) : new[] { node!.GetValue<float>() };

    private static JsonNode Node(string path)
    {
        JsonNode node = Reference;
        foreach (string part in path.Split('.'))
            node = node[part] ?? throw new KeyNotFoundException(path);
        return node;
    }
}
