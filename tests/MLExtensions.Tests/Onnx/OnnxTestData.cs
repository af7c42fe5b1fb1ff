using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Vision;

namespace MLExtensions.Tests.Onnx;

/// <summary>Real inputs for the export tests, and a way to run an ONNX model on them with ONNX Runtime.</summary>
internal static class OnnxTestData
{
    public const int FashionSize = 28;

    public sealed class FashionRow
    {
        [VectorType(FashionSize * FashionSize)]
        public byte[] Pixels { get; set; } = Array.Empty<byte>();

        public string Label { get; set; } = "";
    }

    private static readonly string[] FashionClasses =
        { "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    /// <summary>The first <paramref name="count"/> images of the Fashion-MNIST training subset (classes interleaved).</summary>
    public static List<FashionRow> Fashion(int count, bool test = false)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "TestData", "FashionMnist");
        string prefix = test ? "t10k" : "train";
        var images = IdxFile.ReadImages(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), count);
        var labels = IdxFile.ReadLabels(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"), count);
        return Enumerable.Range(0, images.Count)
            .Select(i => new FashionRow { Pixels = images.Image(i).ToArray(), Label = FashionClasses[labels[i]] })
            .ToList();
    }

    /// <summary>
    /// Fashion-MNIST training rows with the label mapped to a key, and an image classifier fitted on them for one short
    /// epoch (enough to move the weights and batch-norm statistics away from their initial values). <paramref name="configure"/>
    /// sets the architecture and anything else on top of the pixel-column settings.
    /// </summary>
    public static (ITransformer Model, IDataView Data, ITransformer LabelKeys) FashionClassifier(MLContext ml, int rows, int seed, Action<ImageClassifierOptions> configure)
    {
        var view = ml.Data.LoadFromEnumerable(Fashion(rows));
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view);
        var data = keys.Transform(view);
        var options = new ImageClassifierOptions
        {
            ImageColumnName = "Pixels", ImageChannels = 1, ImageHeight = FashionSize, ImageWidth = FashionSize,
            Epochs = 1, BatchSize = 32, Seed = seed,
        };
        configure(options);
        return (ml.MulticlassClassification.Trainers.ImageClassifier(options).Fit(data), data, keys);
    }

    /// <summary>Every row of a float or byte vector column, as float.</summary>
    public static float[][] ReadVectors(IDataView data, string column)
    {
        var col = data.Schema[column];
        var rows = new List<float[]>();
        using var cursor = data.GetRowCursor(new[] { col });
        if (col.Type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte)
        {
            var getter = cursor.GetGetter<VBuffer<byte>>(col);
            VBuffer<byte> value = default;
            while (cursor.MoveNext())
            {
                getter(ref value);
                rows.Add(value.DenseValues().Select(b => (float)b).ToArray());
            }
        }
        else
        {
            var getter = cursor.GetGetter<VBuffer<float>>(col);
            VBuffer<float> value = default;
            while (cursor.MoveNext())
            {
                getter(ref value);
                rows.Add(value.DenseValues().ToArray());
            }
        }
        return rows.ToArray();
    }

    /// <summary>Every value of a float scalar column.</summary>
    public static float[] ReadScalars(IDataView data, string column) =>
        data.GetColumn<float>(column).ToArray();

    /// <summary>Runs the model at <paramref name="path"/> on the rows as one batch; returns each output as [rows][values].</summary>
    public static Dictionary<string, float[][]> Run(string path, string inputName, float[][] rows)
    {
        using var session = new InferenceSession(path);
        int width = rows[0].Length;
        var input = new DenseTensor<float>(rows.SelectMany(r => r).ToArray(), new[] { rows.Length, width });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(inputName, input) });
        var outputs = new Dictionary<string, float[][]>();
        foreach (var result in results)
        {
            var tensor = result.AsTensor<float>();
            int k = tensor.Dimensions[1];
            var values = tensor.ToArray();
            outputs[result.Name] = Enumerable.Range(0, rows.Length).Select(i => values.AsSpan(i * k, k).ToArray()).ToArray();
        }
        return outputs;
    }

    public static float MaxAbsDifference(float[][] expected, float[][] actual)
    {
        Xunit.Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Xunit.Assert.Equal(expected[i].Length, actual[i].Length);
            for (int j = 0; j < expected[i].Length; j++)
                max = Math.Max(max, Math.Abs(expected[i][j] - actual[i][j]));
        }
        return max;
    }
}
