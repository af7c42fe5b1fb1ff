namespace MLExtensions.Benchmarks.Data;

/// <summary>Images (28 × 28 = 784 floats in [0, 1] each) and their class labels 0..9.</summary>
/// <param name="Images">One array of 784 pixels per image, row-major.</param>
/// <param name="Labels">One label per image.</param>
internal sealed record LabeledImages(float[][] Images, byte[] Labels)
{
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;
}

/// <summary>Fashion-MNIST loaded from a folder of the four original <c>*-ubyte.gz</c> files.</summary>
internal sealed class FashionMnist
{
    /// <summary>Pixels per image.</summary>
    public const int Pixels = 28 * 28;

    /// <summary>Number of classes.</summary>
    public const int Classes = 10;

    private FashionMnist(string folder, string origin, LabeledImages train, LabeledImages test)
    {
        Folder = folder;
        Origin = origin;
        Train = train;
        Test = test;
    }

    /// <summary>The folder the files were read from (full path).</summary>
    public string Folder { get; }

    /// <summary>Why this folder was used (given, default, or fallback), for the report.</summary>
    public string Origin { get; }

    /// <summary>The training split.</summary>
    public LabeledImages Train { get; }

    /// <summary>The test split (t10k).</summary>
    public LabeledImages Test { get; }

    /// <summary>
    /// Loads the data from <paramref name="requestedFolder"/> when given. Otherwise from the shared full copy
    /// (<c>../shared/data/fashion-mnist</c> next to the repository), falling back to the repository's small
    /// subset (<c>samples/data/fashion-mnist</c>) when the shared copy is absent.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The requested folder, or both default folders, lack the files.</exception>
    public static FashionMnist Load(string? requestedFolder, string repositoryRoot)
    {
        string folder;
        string origin;
        if (requestedFolder is not null)
        {
            folder = Path.GetFullPath(requestedFolder);
            origin = "given with --data";
            // An explicit folder never falls back: a silently smaller data set would make the numbers meaningless.
            if (!HasFiles(folder))
                throw new DirectoryNotFoundException($"'{folder}' (from --data) does not hold the Fashion-MNIST files ({string.Join(", ", FileNames)}).");
        }
        else
        {
            string shared = Path.GetFullPath(Path.Combine(repositoryRoot, "..", "shared", "data", "fashion-mnist"));
            string sample = Path.Combine(repositoryRoot, "samples", "data", "fashion-mnist");
            if (HasFiles(shared))
                (folder, origin) = (shared, "default: shared full copy");
            else if (HasFiles(sample))
                (folder, origin) = (sample, $"fallback: small repository subset, because '{shared}' is absent");
            else
                throw new DirectoryNotFoundException($"Neither '{shared}' nor '{sample}' holds the Fashion-MNIST files; pass --data <folder>.");
        }
        return new FashionMnist(folder, origin, Read(folder, "train"), Read(folder, "t10k"));
    }

    private static readonly string[] FileNames =
    {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    };

    private static bool HasFiles(string folder) => FileNames.All(f => File.Exists(Path.Combine(folder, f)));

    private static LabeledImages Read(string folder, string split)
    {
        string imagesPath = Path.Combine(folder, $"{split}-images-idx3-ubyte.gz");
        string labelsPath = Path.Combine(folder, $"{split}-labels-idx1-ubyte.gz");
        var idx = MLExtensions.Vision.IdxFile.ReadImages(imagesPath);
        var labels = MLExtensions.Vision.IdxFile.ReadLabels(labelsPath);
        if (idx.Rows * idx.Columns != Pixels)
            throw new InvalidDataException($"'{imagesPath}' holds {idx.Rows}×{idx.Columns} images; Fashion-MNIST images are 28×28.");
        // Pixels as floats in [0, 1], one array per image (what both the pipeline rows and the hand-written loop use).
        var images = new float[idx.Count][];
        for (int i = 0; i < idx.Count; i++)
        {
            var source = idx.Image(i);
            var pixels = images[i] = new float[Pixels];
            for (int p = 0; p < Pixels; p++)
                pixels[p] = source[p] / 255f;
        }
        if (images.Length != labels.Length)
            throw new InvalidDataException($"'{imagesPath}' holds {images.Length} images but '{labelsPath}' holds {labels.Length} labels.");
        int bad = Array.FindIndex(labels, l => l >= Classes);
        if (bad >= 0)
            throw new InvalidDataException($"'{labelsPath}' holds label {labels[bad]} at item {bad}; Fashion-MNIST labels are 0..{Classes - 1}.");
        return new LabeledImages(images, labels);
    }
}
