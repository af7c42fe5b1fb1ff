using MLExtensions.Core;
using MLExtensions.Core.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Vision;

/// <summary>
/// Pretrained ImageNet ResNet-18 weights taken from the ONNX model in ML.NET's NuGet package
/// <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>, as a torchvision-style state dict. Nothing is downloaded: the file
/// comes from a path you give, the application folder, or the restored package in the NuGet cache.
/// </summary>
/// <remarks>
/// <para>What the file contains (a CNTK 2.6 export, ONNX IR 3, opset 8):</para>
/// <list type="bullet">
/// <item>Input <c>Input247</c>, float [1, 3, 224, 224] (batch size fixed at 1); output <c>Pooling395_Output_0</c>, the
/// average-pooled features [1, 512, 1, 1]. There is no classifier, so the state dict has no <c>fc.*</c>.</item>
/// <item>Separate <c>BatchNormalization</c> nodes (epsilon 1e-5, not folded); convolutions without bias.</item>
/// <item>Stage depths [2, 2, 2, 3]: CNTK's ResNet-18 recipe puts a third basic block in the last stage, so besides
/// torchvision's ResNet-18 keys the state dict has <c>layer4.2.*</c> (see <see cref="BlocksPerStage"/>). A module with
/// torchvision's [2, 2, 2, 2] must either get a third block in <c>layer4</c> or leave those keys out (and then no
/// longer computes the same features).</item>
/// <item>The strided convolutions and the max pooling pad only 1 (stem: 3) at the start and 0 (stem: 2) at the end;
/// at 224×224 input this gives exactly torchvision's outputs (see <see cref="ResNetOnnxMapping.Notes"/>).</item>
/// </list>
/// <para>Expected input: <b>BGR</b> channel order, pixel values in [0, 255] (no scaling), minus a per-pixel mean image
/// (<see cref="LoadMeanImage"/>; channel averages B 103.06, G 115.90, R 123.15), no division by a standard deviation.
/// ML.NET applies this in the companion model <c>ResNetPreprocess.onnx</c>, which takes RGB planes in [0, 255],
/// reverses the channels and subtracts the mean image. It is not torchvision's RGB/[0, 1]/ImageNet mean-std
/// normalization.</para>
/// <para>The mapping from ONNX nodes to torchvision names is derived from the graph (<see cref="ResNetOnnxMapping"/>);
/// the tests compare a TorchSharp network loaded with this state dict against ONNX Runtime on the same images.</para>
/// </remarks>
public static class ResNet18OnnxWeights
{
    /// <summary>The NuGet package that ships the model.</summary>
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    /// <summary>File name of the network.</summary>
    public const string ModelFileName = "ResNet18.onnx";

    /// <summary>File name of the companion preprocessing model (channel order and mean image).</summary>
    public const string PreprocessFileName = "ResNetPreprocess.onnx";

    /// <summary>Folder of the network, relative to the application folder (where the package's build props copy it) and to the package's <c>tools</c> folder.</summary>
    public static readonly string ModelFolder = Path.Combine("DnnImageModels", "ResNet18Onnx");

    /// <summary>Folder of the preprocessing model, relative like <see cref="ModelFolder"/>.</summary>
    public static readonly string PreprocessFolder = Path.Combine("DnnImageModels", "ResNetPrepOnnx");

    /// <summary>Input height and width the model was exported for (the ONNX input shape is fixed).</summary>
    public const int ImageSize = 224;

    /// <summary>Basic blocks per stage in this model: [2, 2, 2, 3] (torchvision's ResNet-18: [2, 2, 2, 2]).</summary>
    public static IReadOnlyList<int> BlocksPerStage { get; } = new[] { 2, 2, 2, 3 };

    /// <summary>
    /// Finds <c>ResNet18.onnx</c>: the given path (a file, or a folder holding it directly or under
    /// <see cref="ModelFolder"/>); otherwise the application folder's <see cref="ModelFolder"/>; otherwise the package
    /// in the NuGet global packages folder (<c>NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>), newest version first.
    /// </summary>
    /// <param name="path">A user-given file or folder; when set, nothing else is searched.</param>
    /// <returns>The full path of the file.</returns>
    /// <exception cref="FileNotFoundException">The file was not found; the message lists every place searched.</exception>
    public static string Locate(string? path = null) => Find(path, ModelFolder, ModelFileName);

    /// <summary>Finds <c>ResNetPreprocess.onnx</c>, searching like <see cref="Locate"/>.</summary>
    /// <exception cref="FileNotFoundException">The file was not found; the message lists every place searched.</exception>
    public static string LocatePreprocess(string? path = null) => Find(path, PreprocessFolder, PreprocessFileName);

    /// <summary>Reads the model's graph and derives the ONNX-to-torchvision mapping (for inspection; <see cref="LoadStateDict"/> does this itself).</summary>
    /// <param name="path">See <see cref="Locate"/>.</param>
    public static ResNetOnnxMapping ReadMapping(string? path = null) => ResNetOnnxMapping.FromGraph(OnnxModelReader.Load(Locate(path)));

    /// <summary>
    /// Loads the weights as a torchvision-style state dict: <c>conv1.weight</c>, <c>bn1.{weight, bias, running_mean,
    /// running_var, num_batches_tracked}</c>, <c>layer{1..4}.{block}.conv{1,2}.weight</c>, <c>layer{1..4}.{block}.bn{1,2}.*</c>,
    /// <c>layer{2..4}.0.downsample.0.weight</c>, <c>layer{2..4}.0.downsample.1.*</c>; blocks as in <see cref="BlocksPerStage"/>;
    /// no <c>fc</c>. CPU float32 tensors (<c>num_batches_tracked</c>: int64 scalar 0). The caller owns and disposes them.
    /// </summary>
    /// <param name="path">See <see cref="Locate"/>.</param>
    /// <exception cref="FileNotFoundException">The file was not found.</exception>
    /// <exception cref="InvalidDataException">The file is corrupt, or is not the expected ResNet.</exception>
    public static Dictionary<string, Tensor> LoadStateDict(string? path = null)
    {
        var model = OnnxModelReader.Load(Locate(path));
        ResNetOnnxMapping mapping;
        try
        {
            mapping = ResNetOnnxMapping.FromGraph(model);
        }
        catch (NotSupportedException e)
        {
            throw new InvalidDataException($"{model.Source} is not the ResNet-18 of {PackageId}: {e.Message}", e);
        }
        if (!mapping.BlocksPerStage.SequenceEqual(BlocksPerStage))
            throw new InvalidDataException($"{model.Source} has blocks per stage [{string.Join(", ", mapping.BlocksPerStage)}]; the ResNet-18 of {PackageId} has [{string.Join(", ", BlocksPerStage)}].");
        return mapping.ToStateDict(model);
    }

    /// <summary>
    /// Loads the per-pixel mean image [3, 224, 224] in <b>BGR</b> order and [0, 255] scale from
    /// <c>ResNetPreprocess.onnx</c>. The network's input for RGB images <c>x</c> [N, 3, 224, 224] in [0, 255] is
    /// <c>x.flip(1) - meanImage</c>. The caller owns the tensor.
    /// </summary>
    /// <param name="path">The preprocessing model, or a folder; see <see cref="LocatePreprocess"/>.</param>
    /// <exception cref="InvalidDataException">The preprocessing graph is not Split → reversing Concat → Sub(mean image).</exception>
    public static Tensor LoadMeanImage(string? path = null)
    {
        var model = OnnxModelReader.Load(LocatePreprocess(path));
        // Expected graph: Split(input, axis 1) → R, G, B; Concat(B, G, R); Sub(BGR, MeanImage).
        var split = model.Nodes.FirstOrDefault(n => n.OpType == "Split");
        var concat = model.Nodes.FirstOrDefault(n => n.OpType == "Concat");
        var sub = model.Nodes.FirstOrDefault(n => n.OpType == "Sub");
        if (split is null || concat is null || sub is null || split.Outputs.Count != 3
            || !concat.Inputs.SequenceEqual(split.Outputs.Reverse()) || sub.Inputs[0] != concat.Outputs[0]
            || !model.TryGetInitializer(sub.Inputs[1], out var mean) || !mean.Dims.SequenceEqual(new long[] { 1, 3, ImageSize, ImageSize }))
        {
            throw new InvalidDataException($"{model.Source} is not ML.NET's ResNet preprocessing (RGB→BGR channel reversal, then subtraction of a [1, 3, {ImageSize}, {ImageSize}] mean image).");
        }
        TorchNativeLoader.EnsureLoaded();
        return torch.tensor(mean.ToFloatArray(), new long[] { 3, ImageSize, ImageSize });
    }

    /// <summary>
    /// Sets <paramref name="preprocess"/> up for this network: BGR channel order, pixels in [0, 255], minus the per-channel
    /// averages of the mean image (which stand in for the mean image itself), no std.
    /// </summary>
    /// <param name="preprocess">The preprocessing layer (3 output channels).</param>
    /// <param name="unitScale">The factor that brings the raw pixels to [0, 1] (1/255 for bytes and 0–255 floats).</param>
    internal static void ConfigurePreprocessor(ImagePreprocessor preprocess, float unitScale)
    {
        preprocess.ReverseChannels();
        using var meanImage = LoadMeanImage();
        using var channelMeans = meanImage.reshape(3, -1).mean(new long[] { 1 });
        preprocess.SetStatistics(unitScale * 255, channelMeans.data<float>().ToArray(), new float[] { 1, 1, 1 });
    }

    /// <summary>The places <see cref="Locate"/> searches when no path is given, in order.</summary>
    internal static IReadOnlyList<string> SearchLocations(string folder, string fileName, string packagesFolder)
    {
        var places = new List<string> { Path.Combine(AppContext.BaseDirectory, folder, fileName) };
        string packageRoot = Path.Combine(packagesFolder, PackageId.ToLowerInvariant());
        if (Directory.Exists(packageRoot))
        {
            var versions = Directory.GetDirectories(packageRoot)
                .OrderByDescending(d => Version.TryParse(Path.GetFileName(d).Split('-', '+')[0], out var v) ? v : new Version(0, 0))
                .ThenByDescending(d => Path.GetFileName(d), StringComparer.Ordinal);
            places.AddRange(versions.Select(d => Path.Combine(d, "tools", folder, fileName)));
        }
        else
        {
            places.Add(Path.Combine(packageRoot, "<version>", "tools", folder, fileName));
        }
        return places;
    }

    /// <summary>NuGet's global packages folder: <c>NUGET_PACKAGES</c> if set, else <c>~/.nuget/packages</c>.</summary>
    internal static string NuGetPackagesFolder()
    {
        string? configured = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        return !string.IsNullOrWhiteSpace(configured)
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    private static string Find(string? path, string folder, string fileName)
    {
        if (!string.IsNullOrWhiteSpace(path))
        {
            string full = Path.GetFullPath(path);
            if (File.Exists(full))
                return full;
            if (Directory.Exists(full))
            {
                foreach (var candidate in new[] { Path.Combine(full, fileName), Path.Combine(full, folder, fileName), Path.Combine(full, "tools", folder, fileName) })
                {
                    if (File.Exists(candidate))
                        return candidate;
                }
                throw new FileNotFoundException($"The folder '{full}' does not contain {fileName} (also looked under {folder} and tools/{folder}).", Path.Combine(full, fileName));
            }
            throw new FileNotFoundException($"'{full}' does not exist; expected the path of {fileName} or of a folder containing it.", full);
        }
        var places = SearchLocations(folder, fileName, NuGetPackagesFolder());
        return places.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"{fileName} was not found. Looked in: {string.Join("; ", places)}. Reference the NuGet package {PackageId} " +
                $"(its build props copy the model to {folder} in the output folder), or pass the file's path. " +
                "A globalPackagesFolder set in NuGet.Config is not searched; set NUGET_PACKAGES or pass the path.", places[0]);
    }
}
