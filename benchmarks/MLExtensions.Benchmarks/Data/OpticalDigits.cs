using System.IO.Compression;

namespace MLExtensions.Benchmarks.Data;

/// <summary>
/// The UCI optical hand-written digits as scikit-learn ships them (samples/data/digits.csv.gz, 1,797 images): 8 × 8 grey images
/// with pixel counts 0..16 and the digit as the 65th field. Pixels are scaled to [0, 1].
/// </summary>
internal static class OpticalDigits
{
    /// <summary>Side of the square images.</summary>
    public const int Side = 8;

    /// <summary>All images, in file order.</summary>
    public static LabeledImages Load(string repositoryRoot)
    {
        string path = Path.Combine(repositoryRoot, "samples", "data", "digits.csv.gz");
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        var images = new List<float[]>();
        var labels = new List<byte>();
        while (reader.ReadLine() is string line)
        {
            string[] fields = line.Split(',');
            if (fields.Length != Side * Side + 1)
                throw new InvalidDataException($"'{path}' line {images.Count + 1}: expected {Side * Side + 1} fields, found {fields.Length}.");
            images.Add(fields.Take(Side * Side).Select(f => float.Parse(f) / 16f).ToArray());
            labels.Add(byte.Parse(fields[^1]));
        }
        return new LabeledImages(images.ToArray(), labels.ToArray());
    }

    /// <summary>A seeded shuffle split into the first <paramref name="testCount"/> images (test) and the rest (training).</summary>
    public static (LabeledImages Train, LabeledImages Test) Split(LabeledImages all, int testCount, int seed)
    {
        int[] order = Enumerable.Range(0, all.Count).ToArray();
        new Random(seed).Shuffle(order);
        LabeledImages Take(IEnumerable<int> indices) => new(indices.Select(i => all.Images[i]).ToArray(), indices.Select(i => all.Labels[i]).ToArray());
        return (Take(order.Skip(testCount).ToArray()), Take(order.Take(testCount).ToArray()));
    }
}
