using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>
/// Stores network weights and options inside ML.NET's model zip. Weights go into their own zip entry with a
/// SHA-256 checksum, so a damaged file fails with a clear message instead of loading garbage.
/// </summary>
internal static class NetworkPersistence
{
    /// <summary>The zip entry (inside the transformer's folder) that holds the weights.</summary>
    public const string WeightsEntry = "Weights.bin";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>
    /// The version record of a library component in a model file. Every component starts at 1.1; bump
    /// <c>verWrittenCur</c> for optional trailing fields and <c>verReadableCur</c> only for breaking layouts
    /// (see mlnet-integration.md §11.3).
    /// </summary>
    /// <param name="modelSignature">Exactly 8 ASCII characters.</param>
    /// <param name="loaderSignature">The LoadableClass signature (≤ 24 ASCII characters).</param>
    /// <param name="component">The component type (its assembly is recorded so ML.NET can load it by name).</param>
    /// <param name="written">The layout this build writes (1.1 unless the component has moved on).</param>
    /// <param name="readable">The oldest reader that can read what this build writes.</param>
    public static VersionInfo Version(string modelSignature, string loaderSignature, Type component, uint written = 0x00010001, uint readable = 0x00010001) => new(
        modelSignature: modelSignature,
        verWrittenCur: written,
        verReadableCur: readable,
        verWeCanReadBack: 0x00010001,
        loaderSignature: loaderSignature,
        loaderAssemblyName: component.Assembly.FullName);

    /// <summary>Serializes <paramref name="module"/>'s state dict (parameters and buffers) with a checksum.</summary>
    public static void SaveWeights(ModelSaveContext ctx, nn.Module module)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        using (var snapshot = WeightSnapshot.Take(module))
            snapshot.Save(writer);
        byte[] bytes = buffer.ToArray();
        ctx.Writer.Write(Convert.ToHexString(SHA256.HashData(bytes)));
        ctx.SaveBinaryStream(WeightsEntry, w => w.Write(bytes));
    }

    /// <summary>Loads weights saved by <see cref="SaveWeights"/> into <paramref name="module"/>, checking checksum, names and shapes.</summary>
    public static void LoadWeights(ModelLoadContext ctx, nn.Module module, string componentName)
    {
        string expected = ctx.Reader.ReadString();
        byte[]? bytes = null;
        if (!ctx.TryLoadBinaryStream(WeightsEntry, r => bytes = r.ReadBytes((int)r.BaseStream.Length)) || bytes is null)
            throw new InvalidDataException($"The model file has no network weights for {componentName} (entry '{WeightsEntry}' is missing).");
        string actual = Convert.ToHexString(SHA256.HashData(bytes));
        if (actual != expected)
            throw new InvalidDataException($"The network weights of {componentName} in the model file are corrupted (checksum mismatch).");
        using var reader = new BinaryReader(new MemoryStream(bytes));
        using var snapshot = WeightSnapshot.Load(reader);
        var mismatch = snapshot.Mismatch(module);
        if (mismatch is not null)
            throw new InvalidDataException($"The network weights of {componentName} do not fit its architecture: {mismatch}.");
        snapshot.RestoreInto(module);
    }

    /// <summary>Writes an options object as JSON (settings that cannot be serialized, like callbacks, are skipped).</summary>
    public static void SaveOptions<T>(ModelSaveContext ctx, T options) => ctx.Writer.Write(JsonSerializer.Serialize(options, JsonOptions));

    /// <summary>Reads options written by <see cref="SaveOptions{T}"/>.</summary>
    public static T LoadOptions<T>(ModelLoadContext ctx, string componentName)
    {
        string json = ctx.Reader.ReadString();
        try
        {
            return JsonSerializer.Deserialize<T>(json, JsonOptions) ?? throw new InvalidDataException("empty options record");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The options of {componentName} in the model file are corrupted: {e.Message}", e);
        }
    }
}
