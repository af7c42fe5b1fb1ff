using Microsoft.ML.Data;

namespace MLExtensions.Tests.Vision;

/// <summary>
/// A separable synthetic image task: 1×16×16 noisy images whose bright bar is vertical-left, vertical-right or
/// horizontal-top, labelled "left", "right", "top".
/// </summary>
public static class SyntheticImages
{
    public const int Size = 16;

    public static readonly string[] Classes = { "left", "right", "top" };

    public sealed class Row
    {
        [VectorType(Size * Size)]
        public float[] Pixels { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = "";
    }

    public sealed class ByteRow
    {
        [VectorType(Size * Size)]
        public byte[] Pixels { get; set; } = Array.Empty<byte>();

        public string Label { get; set; } = "";
    }

    public static List<Row> Make(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>();
        for (int n = 0; n < count; n++)
        {
            int cls = n % 3;
            var pixels = new float[Size * Size];
            int offset = random.Next(0, 3);
            for (int y = 0; y < Size; y++)
            {
                for (int x = 0; x < Size; x++)
                {
                    bool on = cls switch
                    {
                        0 => x >= 1 + offset && x < 4 + offset,
                        1 => x >= Size - 4 - offset && x < Size - 1 - offset,
                        _ => y >= 1 + offset && y < 4 + offset,
                    };
                    pixels[y * Size + x] = (on ? 200 : 30) + (float)(random.NextDouble() * 40);
                }
            }
            rows.Add(new Row { Pixels = pixels, Label = Classes[cls] });
        }
        return rows;
    }

    public static List<ByteRow> MakeBytes(int count, int seed) =>
        Make(count, seed).Select(r => new ByteRow { Pixels = r.Pixels.Select(v => (byte)Math.Min(255, v)).ToArray(), Label = r.Label }).ToList();
}
