using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>Small pieces shared by the multimodal models: running a tower without gradients into float rows, copying weights, vector getters.</summary>
internal static class EmbeddingRows
{
    /// <summary>Runs <paramref name="encode"/> on the texts (none: no call) without gradients and returns its rows.</summary>
    public static float[][] OfTexts(IReadOnlyList<string?> texts, Func<IReadOnlyList<string?>, Tensor> encode)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0)
            return Array.Empty<float[]>();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        return Of(encode(texts));
    }

    /// <summary>The rows of a [N, D] tensor.</summary>
    public static float[][] Of(Tensor matrix)
    {
        int n = (int)matrix.shape[0], d = (int)matrix.shape[1];
        var flat = matrix.contiguous().data<float>().ToArray();
        return Enumerable.Range(0, n).Select(i => flat.AsSpan(i * d, d).ToArray()).ToArray();
    }

    /// <summary>Copies every parameter and buffer of <paramref name="source"/> into <paramref name="target"/> (same architecture) and sets evaluation mode.</summary>
    public static T CopyWeights<T>(nn.Module source, T target) where T : nn.Module
    {
        using (torch.no_grad())
        {
            var values = source.state_dict();
            foreach (var (key, tensor) in target.state_dict())
                tensor.copy_(values[key]);
        }
        target.eval();
        return target;
    }

    /// <summary>A getter that writes the vector <paramref name="embed"/> returns for the current row.</summary>
    public static ValueGetter<VBuffer<float>> VectorGetter(Func<float[]> embed, int dimension) => (ref VBuffer<float> dst) =>
    {
        var vector = embed();
        var editor = VBufferEditor.Create(ref dst, dimension);
        vector.CopyTo(editor.Values);
        dst = editor.Commit();
    };
}
