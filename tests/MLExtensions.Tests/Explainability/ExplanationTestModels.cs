using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Explainability;
using MLExtensions.Tabular;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Explainability;

/// <summary>Models with known explanations, built for the explanation tests.</summary>
internal static class ExplanationTestModels
{
    public sealed class Row
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    public sealed class ScoreRow
    {
        public float Score { get; set; }
    }

    /// <summary>Rows of <paramref name="size"/> features from a seeded generator (values in [−2, 3)).</summary>
    public static IDataView Rows(MLContext ml, IEnumerable<float[]> rows, int size)
    {
        var definition = SchemaDefinition.Create(typeof(Row));
        definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return ml.Data.LoadFromEnumerable(rows.Select(r => new Row { Features = r }).ToList(), definition);
    }

    public static List<float[]> RandomRows(int count, int size, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, size).Select(_ => (float)(random.NextDouble() * 5 - 2)).ToArray()).ToList();
    }

    /// <summary>An ML.NET model (not a network) whose Score is <paramref name="f"/> of the feature vector: a regression model to KernelSHAP.</summary>
    public static ITransformer Function(MLContext ml, int size, Func<float[], float> f)
    {
        var input = SchemaDefinition.Create(typeof(Row));
        input[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        var estimator = ml.Transforms.CustomMapping<Row, ScoreRow>((row, score) => score.Score = f(row.Features), null, input);
        return estimator.Fit(Rows(ml, RandomRows(1, size, 0), size));
    }

    /// <summary>
    /// captum's BasicModel_MultiLayer (target 0): h = ReLU(ones(4×3)·x + [−10, 1, 1, 1]); output 0 = ones(4)·h − 1.
    /// (Its first layer is the identity.)
    /// </summary>
    public static float BasicModelMultiLayer(float[] x)
    {
        float sum = x[0] + x[1] + x[2];
        return Math.Max(sum - 10, 0) + 3 * Math.Max(sum + 1, 0) - 1;
    }

    /// <summary>Trains a regression MLP briefly (so it is a real fitted model), then sets its weights.</summary>
    public static NeuralNetworkTransformer MlpWithWeights(MLContext ml, int inputs, int[] hidden, Action<MultiLayerPerceptron> setWeights)
    {
        var data = ml.Data.LoadFromEnumerable(RandomRows(32, inputs, 1).Select(r => new LabelledRow { Features = r, Label = r.Sum() }).ToList(),
            Definition<LabelledRow>(inputs));
        var model = ml.Regression.Trainers.NeuralNetwork(new NeuralNetworkOptions
        {
            HiddenLayers = hidden, Epochs = 1, Dropout = 0, FeatureScaling = FeatureScaling.None, Seed = 1, ValidationFraction = 0,
        }).Fit(data);
        using (torch.no_grad())
            setWeights(model.Model);
        return model;
    }

    public static SchemaDefinition Definition<T>(int size)
    {
        var definition = SchemaDefinition.Create(typeof(T));
        definition[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return definition;
    }

    public sealed class LabelledRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();

        public float Label { get; set; }
    }

    /// <summary>The exception of type <typeparamref name="T"/> thrown by <paramref name="action"/>, itself or as an inner exception (ML.NET's parallel cursors wrap exceptions of row getters).</summary>
    public static T Thrown<T>(Action action) where T : Exception
    {
        var thrown = Assert.ThrowsAny<Exception>(action);
        for (Exception? e = thrown; e is not null; e = e.InnerException)
        {
            if (e.GetType() == typeof(T) && !e.Message.StartsWith("Splitter/consolidator", StringComparison.Ordinal))
                return (T)e;
        }
        throw new Xunit.Sdk.XunitException($"Expected {typeof(T).Name}; got {thrown}");
    }

    /// <summary>Reads the explanation columns of every row.</summary>
    public static List<(float[] Attributions, float BaseValue, float Delta)> Read(IDataView explained)
    {
        var result = new List<(float[], float, float)>();
        var a = explained.Schema[ExplanationTransformer.AttributionsColumn];
        var b = explained.Schema[ExplanationTransformer.BaseValueColumn];
        var d = explained.Schema[ExplanationTransformer.ConvergenceDeltaColumn];
        using var cursor = explained.GetRowCursor(new[] { a, b, d });
        var getA = cursor.GetGetter<VBuffer<float>>(a);
        var getB = cursor.GetGetter<float>(b);
        var getD = cursor.GetGetter<float>(d);
        VBuffer<float> values = default;
        float baseValue = 0, delta = 0;
        while (cursor.MoveNext())
        {
            getA(ref values);
            getB(ref baseValue);
            getD(ref delta);
            result.Add((values.DenseValues().ToArray(), baseValue, delta));
        }
        return result;
    }

    /// <summary>Exact Shapley values of v(S) = mean over references of f(x on S, reference elsewhere), by enumerating all coalitions.</summary>
    public static double[] BruteForceShapley(Func<float[], float> f, float[] x, IReadOnlyList<float[]> references) =>
        ShapleyValues(x.Length, s =>
        {
            double sum = 0;
            foreach (var r in references)
            {
                var z = (float[])r.Clone();
                for (int j = 0; j < x.Length; j++)
                {
                    if ((s >> j & 1) == 1)
                        z[j] = x[j];
                }
                sum += f(z);
            }
            return sum / references.Count;
        });

    /// <summary>Shapley values of players 0..m−1 from the value of every coalition (bit j set = player j present).</summary>
    public static double[] ShapleyValues(int m, Func<int, double> value)
    {
        var values = Enumerable.Range(0, 1 << m).Select(value).ToArray();
        var factorial = new double[m + 1];
        factorial[0] = 1;
        for (int i = 1; i <= m; i++)
            factorial[i] = factorial[i - 1] * i;
        var phi = new double[m];
        for (int j = 0; j < m; j++)
        {
            for (int s = 0; s < 1 << m; s++)
            {
                if ((s >> j & 1) == 1)
                    continue;
                int size = System.Numerics.BitOperations.PopCount((uint)s);
                phi[j] += factorial[size] * factorial[m - size - 1] / factorial[m] * (values[s | 1 << j] - values[s]);
            }
        }
        return phi;
    }

    /// <summary>Equality within a tolerance relative to max(1, |expected|).</summary>
    public sealed class Tolerance : IEqualityComparer<double>
    {
        private readonly double _tolerance;

        public Tolerance(double tolerance) => _tolerance = tolerance;

        public bool Equals(double a, double b) => Math.Abs(a - b) <= _tolerance * Math.Max(1, Math.Abs(a));

        public int GetHashCode(double value) => 0;
    }

    /// <summary>Spearman rank correlation (ties ranked by position).</summary>
    public static double SpearmanCorrelation(double[] a, double[] b)
    {
        double[] Ranks(double[] v)
        {
            var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
            var ranks = new double[v.Length];
            for (int i = 0; i < order.Length; i++)
                ranks[order[i]] = i;
            return ranks;
        }
        var ra = Ranks(a);
        var rb = Ranks(b);
        double ma = ra.Average(), mb = rb.Average();
        double cov = ra.Zip(rb).Sum(p => (p.First - ma) * (p.Second - mb));
        return cov / Math.Sqrt(ra.Sum(x => (x - ma) * (x - ma)) * rb.Sum(x => (x - mb) * (x - mb)));
    }
}
