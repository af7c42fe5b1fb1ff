using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>The weight file formats <c>TorchvisionWeights</c> reads.</summary>
public enum WeightFileFormat
{
    /// <summary>A PyTorch state dict written by <c>torch.save(model.state_dict(), path)</c> (zip format, PyTorch 1.6 or later); <c>.pt</c> or <c>.pth</c>.</summary>
    PyTorch,

    /// <summary>A <c>.safetensors</c> file (Hugging Face's format: a JSON index followed by raw tensor bytes).</summary>
    Safetensors,

    /// <summary>Tensors converted in memory from another source (e.g. the ONNX ResNet-18 of ML.NET's featurizer package).</summary>
    InMemory,
}

/// <summary>Reads every tensor of a state-dict file into memory, through TorchSharp.PyBridge.</summary>
internal static class StateDictFile
{
    /// <summary>The format of <paramref name="path"/>, from its extension.</summary>
    /// <exception cref="NotSupportedException">The extension is not <c>.pt</c>, <c>.pth</c> or <c>.safetensors</c>.</exception>
    public static WeightFileFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".pt" or ".pth" => WeightFileFormat.PyTorch,
        ".safetensors" => WeightFileFormat.Safetensors,
        var other => throw new NotSupportedException(
            $"Cannot read weights from '{path}': unknown extension '{other}'. Expected .pt or .pth (a PyTorch state dict saved with " +
            "torch.save(model.state_dict(), path)) or .safetensors."),
    };

    /// <summary>
    /// Reads all tensors, on the CPU, created in the caller's dispose scope. PyBridge reads both formats
    /// completely, so a file briefly needs its size in memory next to the network.
    /// </summary>
    /// <exception cref="InvalidDataException">The file cannot be parsed as the format its extension names.</exception>
    public static Dictionary<string, Tensor> Read(string path, WeightFileFormat format)
    {
        if (format == WeightFileFormat.Safetensors)
            return Parse(path, format, () => Safetensors.LoadStateDict(path));

        var table = Parse(path, format, () =>
        {
            // Opened here rather than by PyBridge, so the file is closed even when PyBridge rejects it.
            using var stream = File.OpenRead(path);
            return PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true);
        });
        var tensors = new Dictionary<string, Tensor>(table.Count);
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Value is not Tensor tensor)
                throw new InvalidDataException(
                    $"Cannot read weights from '{path}': entry '{entry.Key}' is a {entry.Value?.GetType().Name ?? "null"}, not a tensor. " +
                    "The file looks like a training checkpoint; save model.state_dict() on its own.");
            tensors.Add((string)entry.Key, tensor);
        }
        return tensors;
    }

    private static T Parse<T>(string path, WeightFileFormat format, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is not (OutOfMemoryException or UnauthorizedAccessException or FileNotFoundException or DirectoryNotFoundException))
        {
            // PyBridge reports unreadable content as NotImplementedException, zip, JSON or cast errors: say which file and what to do.
            string expected = format == WeightFileFormat.Safetensors
                ? "a safetensors file"
                : "a PyTorch state dict in the zip format torch.save writes since PyTorch 1.6 (re-save older files with " +
                  "torch.save(torch.load(old), new)), holding model.state_dict() rather than the model";
            throw new InvalidDataException($"Cannot read weights from '{path}': expected {expected}. {e.Message}", e);
        }
    }
}
