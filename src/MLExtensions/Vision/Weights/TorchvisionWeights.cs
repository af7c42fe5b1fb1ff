using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// Loads pretrained weights in torchvision's layout (for example ImageNet weights exported from Python) into
/// an <see cref="ImageNetwork"/>. Nothing is downloaded: the weights come from a file the user supplies.
/// </summary>
/// <remarks>
/// <para>
/// Supported networks: those whose parameter names are torchvision's, that is <see cref="ImageArchitecture.ResNet18"/>,
/// <see cref="ImageArchitecture.ResNet34"/>, <see cref="ImageArchitecture.ResNet50"/> with the ImageNet stem,
/// <see cref="ImageArchitecture.Vgg11"/>/<see cref="ImageArchitecture.Vgg16"/> with width multiplier 1
/// (batch norm matching the file: <c>vgg16</c> or <c>vgg16_bn</c>) and <see cref="ImageArchitecture.AlexNet"/>
/// with the ImageNet stem; build VGG/AlexNet for 224×224 input or set <see cref="ImageNetworkSettings.ClassifierPoolSize"/>.
/// Names map one to one, so no renaming table is needed.
/// </para>
/// <para>
/// To produce a file in Python: <c>torch.save(torchvision.models.resnet18(weights="IMAGENET1K_V1").state_dict(), "resnet18.pth")</c>,
/// or <c>safetensors.torch.save_file(model.state_dict(), "resnet18.safetensors")</c>.
/// </para>
/// </remarks>
public static class TorchvisionWeights
{
    private const string OptionalSuffix = ".num_batches_tracked";

    /// <summary>
    /// Copies the weights in <paramref name="path"/> into <paramref name="network"/>. Every entry of the
    /// network must be in the file with the same shape and the file must have no other entries, except that
    /// the head is skipped when asked or when its class count differs, and <c>num_batches_tracked</c>
    /// counters may be absent (see <see cref="WeightLoadReport.MissingOptionalKeys"/>). Nothing is copied unless all checks pass.
    /// </summary>
    /// <param name="network">The network to fill; its device and dtype are kept.</param>
    /// <param name="path">A <c>.pt</c>/<c>.pth</c> state dict saved with <c>torch.save</c>, or a <c>.safetensors</c> file.</param>
    /// <param name="skipHead">Leave the head (<c>fc</c>, <c>classifier.6</c>) at its initial values, for fine-tuning on other classes.</param>
    /// <returns>What was loaded and skipped.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="NotSupportedException">The extension is not <c>.pt</c>, <c>.pth</c> or <c>.safetensors</c>.</exception>
    /// <exception cref="InvalidDataException">The file cannot be read, or it holds another architecture (the message names the first mismatching entry and both shapes).</exception>
    public static WeightLoadReport Load(ImageNetwork network, string path, bool skipHead)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Weight file '{Path.GetFullPath(path)}' does not exist.", path);
        var format = StateDictFile.FormatOf(path);
        TorchNativeLoader.EnsureLoaded();

        using var scope = torch.NewDisposeScope();
        var file = StateDictFile.Read(path, format);
        return Load(network, file, path, format, skipHead);
    }

    /// <summary>
    /// Copies a state dict that is already in memory (e.g. converted from another format) into <paramref name="network"/>,
    /// with the same checks and head handling as the file overload.
    /// </summary>
    /// <param name="network">The network to fill.</param>
    /// <param name="stateDict">torchvision-named tensors; not disposed.</param>
    /// <param name="source">Where the tensors came from, for messages and the report.</param>
    /// <param name="skipHead">Leave the head at its initial values.</param>
    public static WeightLoadReport Load(ImageNetwork network, IReadOnlyDictionary<string, Tensor> stateDict, string source, bool skipHead)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(stateDict);
        return Load(network, stateDict.ToDictionary(kv => kv.Key, kv => kv.Value), source, WeightFileFormat.InMemory, skipHead);
    }

    private static WeightLoadReport Load(ImageNetwork network, Dictionary<string, Tensor> file, string path, WeightFileFormat format, bool skipHead)
    {
        var target = network.state_dict();
        string headPrefix = network.HeadName + ".";
        string? headSkipReason = skipHead ? "skipHead was set" : ClassCountDifference(file, target, headPrefix + "weight");
        bool IsSkipped(string key) => headSkipReason is not null && key.StartsWith(headPrefix, StringComparison.Ordinal);

        var loaded = new List<string>();
        var missingOptional = new List<string>();
        foreach (var (key, tensor) in target)
        {
            if (IsSkipped(key))
                continue;
            if (!file.TryGetValue(key, out var source))
            {
                if (key.EndsWith(OptionalSuffix, StringComparison.Ordinal))
                {
                    missingOptional.Add(key);
                    continue;
                }
                throw Mismatch(network, path, $"the network's '{key}' {Shape(tensor)} is missing from the file");
            }
            if (!source.shape.SequenceEqual(tensor.shape))
                throw Mismatch(network, path, $"'{key}' has shape {Shape(source)} in the file but {Shape(tensor)} in the network");
            loaded.Add(key);
        }
        var unexpected = file.Keys.Where(key => !target.ContainsKey(key) && !IsSkipped(key)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (unexpected is not null)
            throw Mismatch(network, path, $"the file has '{unexpected}' {Shape(file[unexpected])}, which the network does not");

        using (torch.no_grad())
        {
            foreach (var key in loaded)
                target[key].copy_(file[key]);
        }
        var skipped = headSkipReason is null ? new List<string>() : target.Keys.Where(IsSkipped).ToList();
        return new WeightLoadReport(path, format, loaded, skipped, headSkipReason, missingOptional);
    }

    /// <summary>The reason to skip the head when the file's head differs from the network's only in its class count.</summary>
    private static string? ClassCountDifference(Dictionary<string, Tensor> file, Dictionary<string, Tensor> target, string headWeight)
    {
        if (!file.TryGetValue(headWeight, out var source) || !target.TryGetValue(headWeight, out var own))
            return null;
        bool sameFeatures = source.dim() == 2 && own.dim() == 2 && source.shape[1] == own.shape[1];
        return sameFeatures && source.shape[0] != own.shape[0]
            ? $"the file's head has {source.shape[0]} classes, the network's {own.shape[0]}"
            : null;
    }

    private static InvalidDataException Mismatch(ImageNetwork network, string path, string detail)
    {
        string hint = detail.Contains("'conv1.weight'") || detail.Contains("'features.0.weight'")
            ? " The first layer differs: check the input channels (torchvision's weights take 3) and the stem (ImageNet weights need SmallInputStem = false)."
            : "";
        return new InvalidDataException(
            $"The weights in '{path}' do not fit this {network.GetType().Name} ({network.GetName()}): {detail}.{hint} " +
            "Check that the file is for the same architecture and settings.");
    }

    private static string Shape(Tensor tensor) => "[" + string.Join(", ", tensor.shape) + "]";
}
