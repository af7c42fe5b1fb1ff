using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Onnx;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using MLExtensions.Vision;
using Xunit;
using Xunit.Abstractions;

namespace MLExtensions.Tests.Onnx;

/// <summary>
/// The ONNX Runtime form of a model (<c>ToOnnxRuntime</c>) has the same output columns and predictions as the
/// TorchSharp original, and gives bit-identical predictions after Save/Load (in this process and a fresh one).
/// </summary>
public class OnnxNetworkTransformerTests
{
    private readonly ITestOutputHelper _log;

    public OnnxNetworkTransformerTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void MlpChainMatchesTheOriginalAndSurvivesSaveLoad()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadWine(ml);
        var original = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 16 }, Epochs = 5, Seed = 1 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"))
            .Fit(data);

        var onnx = ml.Model.ToOnnxRuntime(original, intraOpNumThreads: 1);
        var chain = Assert.IsType<TransformerChain<ITransformer>>(onnx);
        Assert.IsType<OnnxNetworkTransformer>(chain.ElementAt(1));
        AssertSameOutputs(original.Transform(data), onnx.Transform(data));

        using var temp = new TempDirectory();
        ml.Model.Save(onnx, data.Schema, temp.File("onnx.zip"));
        var loaded = new MLContext().Model.Load(temp.File("onnx.zip"), out _);
        var expected = PredictionDump.Lines(onnx.Transform(data)).ToList();
        Assert.Equal(expected, PredictionDump.Lines(loaded.Transform(data)));

        // A process that never saw the original model (nor ran TorchSharp) loads the ONNX network alone and scores it
        // identically (LoadCheck feeds only the Features column).
        var network = chain.ElementAt(1);
        var keyed = original.ElementAt(0).Transform(data);
        ml.Model.Save(network, keyed.Schema, temp.File("network.zip"));
        var rows = OnnxTestData.ReadVectors(data, "Features");
        var fresh = FreshProcess.Predict(temp.File("network.zip"), rows, temp.Path);
        Assert.Equal(PredictionDump.Lines(network.Transform(keyed)), fresh.Skip(1));
    }

    [Fact]
    public void BinaryMlpKeepsScoreProbabilityAndPredictedLabel()
    {
        var ml = new MLContext(seed: 2);
        var data = TabularData.LoadBreastCancer(ml);
        var withBool = ml.Transforms.Conversion.ConvertType("Label", outputKind: DataKind.Boolean).Fit(data).Transform(data);
        var original = ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Epochs = 3, Seed = 2 }).Fit(withBool);
        var onnx = (OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(original);
        Assert.Equal(original.Kind, onnx.Kind);
        AssertSameOutputs(original.Transform(withBool), onnx.Transform(withBool));
        var metrics = ml.BinaryClassification.Evaluate(onnx.Transform(withBool));
        var expected = ml.BinaryClassification.Evaluate(original.Transform(withBool));
        Assert.Equal(expected.Accuracy, metrics.Accuracy);
    }

    [Fact]
    public void ImageClassifierOnBytePixelsMatchesAndSurvivesSaveLoad()
    {
        var ml = new MLContext(seed: 3);
        var (model, data, _) = OnnxTestData.FashionClassifier(ml, 64, seed: 3, o => o.Architecture = ImageArchitecture.LeNet5);
        var original = (ImageClassifierTransformer)model;
        var onnx = (OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(original);
        Assert.Equal(original.ClassNames, onnx.ClassNames);
        AssertSameOutputs(original.Transform(data), onnx.Transform(data));

        using var temp = new TempDirectory();
        ml.Model.Save(onnx, data.Schema, temp.File("image.zip"));
        var loaded = new MLContext().Model.Load(temp.File("image.zip"), out _);
        Assert.Equal(PredictionDump.Lines(onnx.Transform(data)), PredictionDump.Lines(loaded.Transform(data)));
    }

    [Fact]
    public void MiniLmTextClassifierTokenizesLikeTheOriginalAndSurvivesSaveLoad()
    {
        var ml = new MLContext(seed: 5);
        var data = ml.Data.LoadFromEnumerable(MLExtensions.Tests.Text.FineFoods.Rows(ml, "test.csv").Take(8).ToList());
        var original = TextExportTests.MiniLmClassifier(ml, data, maxLength: 32);
        var onnx = (OnnxNetworkTransformer)ml.Model.ToOnnxRuntime(original, intraOpNumThreads: 1);
        Assert.Equal(1, onnx.IntraOpNumThreads);
        AssertSameOutputs(original.Transform(data), onnx.Transform(data));

        using var temp = new TempDirectory();
        ml.Model.Save(onnx, data.Schema, temp.File("text.zip"));
        var loaded = new MLContext().Model.Load(temp.File("text.zip"), out _);
        Assert.Equal(PredictionDump.Lines(onnx.Transform(data)), PredictionDump.Lines(loaded.Transform(data)));
    }

    [Fact]
    public void ParallelCursorsShareTheSessionSafely()
    {
        var ml = new MLContext(seed: 6);
        var data = TabularData.LoadBreastCancer(ml);
        var withBool = ml.Transforms.Conversion.ConvertType("Label", outputKind: DataKind.Boolean).Fit(data).Transform(data);
        var original = ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 32, 32 }, Epochs = 2, Seed = 6 }).Fit(withBool);
        var scored = ml.Model.ToOnnxRuntime(original, intraOpNumThreads: 1).Transform(withBool);
        var sequential = scored.GetColumn<float>("Score").ToArray();

        // Four cursors scoring at once on four threads, each with its own buffers over the one InferenceSession.
        var column = scored.Schema["Score"];
        var cursors = scored.GetRowCursorSet(new[] { column }, 4);
        var parallel = new System.Collections.Concurrent.ConcurrentBag<float>();
        Parallel.ForEach(cursors, new ParallelOptions { MaxDegreeOfParallelism = 4 }, cursor =>
        {
            using (cursor)
            {
                var getter = cursor.GetGetter<float>(column);
                float value = 0;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                    parallel.Add(value);
                }
            }
        });
        // Positions are per cursor in a cursor set, so compare the scores as sorted lists: a buffer shared by mistake
        // between cursors would change values, not just their order.
        Assert.Equal(sequential.Order(), parallel.Order());
    }

    [Fact]
    public void WrongInputColumnIsNamed()
    {
        var ml = new MLContext(seed: 4);
        var data = TabularData.LoadWine(ml);
        var original = ml.Regression.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 4 }, Epochs = 1, Seed = 4 }).Fit(data);
        var onnx = ml.Model.ToOnnxRuntime(original);
        var other = TabularData.LoadBreastCancer(ml);
        var e = Assert.ThrowsAny<ArgumentException>(() => onnx.GetOutputSchema(other.Schema));
        Assert.Contains("Features", e.Message);
    }

    /// <summary>Same output columns with the same types and annotations; same predicted labels; scores within 1e-4.</summary>
    private void AssertSameOutputs(IDataView expected, IDataView actual)
    {
        Assert.Equal(expected.Schema.Select(c => $"{c.Name}:{c.Type}"), actual.Schema.Select(c => $"{c.Name}:{c.Type}"));
        // Column by column (by index: hidden columns share names with the visible ones).
        foreach (var (column, other) in expected.Schema.Zip(actual.Schema))
        {
            Assert.Equal(column.Name + ": " + string.Join(", ", column.Annotations.Schema.Select(a => $"{a.Name}:{a.Type}")),
                other.Name + ": " + string.Join(", ", other.Annotations.Schema.Select(a => $"{a.Name}:{a.Type}")));
        }
        var scoreA = PredictionDump.Lines(expected).ToList();
        var scoreB = PredictionDump.Lines(actual).ToList();
        Assert.Equal(scoreA.Count, scoreB.Count);
        float max = 0;
        int rows = 0;
        var a = ReadScores(expected);
        var b = ReadScores(actual);
        for (int i = 0; i < a.Length; i++, rows++)
            max = Math.Max(max, a[i].Zip(b[i], (x, y) => Math.Abs(x - y)).Max());
        _log.WriteLine($"{rows} rows: max |Δ Score| = {max:E2}");
        Assert.True(max <= 1e-4f, $"max |Δ Score| = {max}");
        Assert.Equal(scoreA.Select(LabelPart), scoreB.Select(LabelPart));
    }

    private static float[][] ReadScores(IDataView scored) =>
        scored.Schema["Score"].Type is VectorDataViewType
            ? scored.GetColumn<float[]>("Score").ToArray()
            : scored.GetColumn<float>("Score").Select(s => new[] { s }).ToArray();

    private static string LabelPart(string line) => line[(line.LastIndexOf('|') + 1)..];
}
