using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Tests.Distillation;

/// <summary>Fixed, hand-written teachers (ML.NET custom mappings) whose decisions are known exactly.</summary>
public static class SyntheticTeachers
{
    /// <summary>Points in [-2, 2]² with a 3-class key label that may be missing (0).</summary>
    public sealed class PointRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = Array.Empty<float>();

        [KeyType(3)]
        public uint Label { get; set; }
    }

    public sealed class ScoreOutput
    {
        [VectorType(3)]
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    /// <summary>The teacher's rule: class = arg-max of (x, y, −x − y).</summary>
    public static int Decide(float[] f) => new[] { f[0], f[1], -f[0] - f[1] }.Select((v, i) => (v, i)).Max().i;

    /// <summary>Probabilities softmax(3 · (x, y, −x − y)).</summary>
    public static void Score(PointRow row, ScoreOutput output)
    {
        var z = new[] { row.Features[0], row.Features[1], -row.Features[0] - row.Features[1] }.Select(v => MathF.Exp(3 * v)).ToArray();
        float sum = z.Sum();
        output.Score = z.Select(v => v / sum).ToArray();
    }

    public static ITransformer PointTeacher(MLContext ml, IDataView data) =>
        ml.Transforms.CustomMapping<PointRow, ScoreOutput>(Score, contractName: null).Fit(data);

    /// <summary>Random points; labels are missing, or (when <paramref name="labelNoise"/> ≥ 0) the teacher's class flipped with that probability.</summary>
    public static List<PointRow> Points(int count, int seed, double labelNoise = -1)
    {
        var random = new Random(seed);
        var rows = new List<PointRow>();
        for (int i = 0; i < count; i++)
        {
            var f = new[] { (float)(random.NextDouble() * 4 - 2), (float)(random.NextDouble() * 4 - 2) };
            uint label = 0;
            if (labelNoise >= 0)
            {
                int c = Decide(f);
                if (random.NextDouble() < labelNoise)
                    c = (c + 1 + random.Next(2)) % 3;
                label = (uint)c + 1;
            }
            rows.Add(new PointRow { Features = f, Label = label });
        }
        return rows;
    }
}
