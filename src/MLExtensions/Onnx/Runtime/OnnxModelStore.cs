using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;

namespace MLExtensions.Onnx.Runtime;

/// <summary>
/// What the ONNX Runtime-backed transformers share: opening a session on the model bytes (with a clear error naming the
/// inputs and output the transformer needs) and keeping the bytes inside the ML.NET model zip with a checksum.
/// </summary>
internal static class OnnxModelStore
{
    private const string ModelEntry = "Network.onnx";

    /// <exception cref="InvalidDataException">ONNX Runtime cannot load the model, or it lacks an input or the output.</exception>
    public static InferenceSession Open(byte[] onnxModel, int intraOpNumThreads, IReadOnlyList<string> inputs, string output)
    {
        using var options = new SessionOptions { IntraOpNumThreads = intraOpNumThreads };
        InferenceSession session;
        try
        {
            session = new InferenceSession(onnxModel, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"ONNX Runtime cannot load the network's ONNX model: {e.Message}", e);
        }
        if (!inputs.All(session.InputMetadata.ContainsKey) || !session.OutputMetadata.ContainsKey(output))
        {
            string message = $"The ONNX model must have the inputs [{string.Join(", ", inputs)}] and the output '{output}'; " +
                $"it has inputs [{string.Join(", ", session.InputMetadata.Keys)}] and outputs [{string.Join(", ", session.OutputMetadata.Keys)}].";
            session.Dispose();
            throw new InvalidDataException(message);
        }
        return session;
    }

    /// <summary>Writes the thread setting, the checksum and the model bytes.</summary>
    public static void Save(ModelSaveContext ctx, byte[] onnxModel, int intraOpNumThreads)
    {
        ctx.Writer.Write(intraOpNumThreads);
        ctx.Writer.Write(Convert.ToHexString(SHA256.HashData(onnxModel)));
        ctx.SaveBinaryStream(ModelEntry, w => w.Write(onnxModel));
    }

    /// <exception cref="InvalidDataException">The model entry is missing or its checksum does not match.</exception>
    public static (byte[] Model, int IntraOpNumThreads) Load(ModelLoadContext ctx)
    {
        int threads = ctx.Reader.ReadInt32();
        string expected = ctx.Reader.ReadString();
        byte[]? bytes = null;
        if (!ctx.TryLoadBinaryStream(ModelEntry, r => bytes = r.ReadBytes((int)r.BaseStream.Length)) || bytes is null)
            throw new InvalidDataException($"The model file has no ONNX network (entry '{ModelEntry}' is missing).");
        if (Convert.ToHexString(SHA256.HashData(bytes)) != expected)
            throw new InvalidDataException("The ONNX network in the model file is corrupted (checksum mismatch).");
        return (bytes, Math.Max(0, threads));
    }
}

/// <summary>Puts the ONNX Runtime form of an exportable step in its place.</summary>
internal static class OnnxRuntimeStep
{
    public static ITransformer Create(IHostEnvironment env, ITransformer step, byte[] onnxModel, int intraOpNumThreads = 0) => step switch
    {
        Core.NetworkTransformerBase network => OnnxNetworkTransformer.Create(env, network, onnxModel, intraOpNumThreads),
        _ => OnnxEmbeddingTransformer.Create(env, step, onnxModel, intraOpNumThreads),
    };
}
