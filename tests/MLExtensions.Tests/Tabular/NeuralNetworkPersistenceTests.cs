using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Tabular;

public class NeuralNetworkPersistenceTests
{
    private static NeuralNetworkOptions QuickOptions() => new() { HiddenLayers = new[] { 16 }, Epochs = 15, BatchNormalization = true, Dropout = 0.2 };

    public static IEnumerable<object[]> Tasks() => new[] { new object[] { "multiclass" }, new object[] { "binary" }, new object[] { "regression" } };

    /// <summary>Wine turned into the data each task needs, with the estimator for that task.</summary>
    private static (IDataView Data, IEstimator<ITransformer> Pipeline) Setup(MLContext ml, string task)
    {
        var wine = TabularData.LoadWine(ml);
        return task switch
        {
            // The label is keyed up front so the saved pipeline needs only Features to predict.
            "multiclass" => (ml.Transforms.Conversion.MapValueToKey("Label").Fit(wine).Transform(wine),
                ml.MulticlassClassification.Trainers.NeuralNetwork(QuickOptions())
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabelValue", "PredictedLabel"))),
            "binary" => (ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<WineRow>(wine, false)
                .Select(r => new WineBinaryRow { Features = r.Features, Label = r.Label == 0 })), ml.BinaryClassification.Trainers.NeuralNetwork(QuickOptions())),
            _ => (wine, ml.Regression.Trainers.NeuralNetwork(QuickOptions())),
        };
    }

    [Theory]
    [MemberData(nameof(Tasks))]
    public void SaveAndLoadInFreshContextGivesBitIdenticalPredictions(string task)
    {
        var ml = new MLContext(seed: 5);
        var (data, pipeline) = Setup(ml, task);
        var model = pipeline.Fit(data);
        using var temp = new TempDirectory();
        string path = temp.File("model.zip");
        ml.Model.Save(model, data.Schema, path);

        var fresh = new MLContext();
        var loaded = fresh.Model.Load(path, out var schema);

        Assert.Equal(data.Schema.Select(c => c.Name), schema.Select(c => c.Name));
        var before = PredictionDump.Lines(model.Transform(data)).ToArray();
        var after = PredictionDump.Lines(loaded.Transform(data)).ToArray();
        Assert.Equal(178, before.Length);
        Assert.Equal(before, after);
    }

    [Theory]
    [MemberData(nameof(Tasks))]
    public void LoadsInAFreshProcessWithIdenticalPredictions(string task)
    {
        var ml = new MLContext(seed: 6);
        var (data, pipeline) = Setup(ml, task);
        var model = pipeline.Fit(data);
        using var temp = new TempDirectory();
        string path = temp.File("model.zip");
        ml.Model.Save(model, data.Schema, path);
        var features = ml.Data.CreateEnumerable<WineRow>(TabularData.LoadWine(ml), false).Select(r => r.Features).ToList();
        var inputs = ml.Data.LoadFromEnumerable(features.Select(f => new FeaturesOnly { Features = f }));

        var expected = PredictionDump.Lines(model.Transform(inputs)).ToArray();
        var lines = FreshProcess.Predict(path, features, temp.Path);

        // The loader must have found our assembly by the name stored in the model, not because it was loaded already.
        Assert.Equal("# MLExtensions loaded before Model.Load: False", lines[0]);
        Assert.Equal(expected, lines.Skip(1).ToArray());
    }

    [Fact]
    public void PredictionEngineAfterReloadMatchesTransform()
    {
        var ml = new MLContext(seed: 7);
        var (data, pipeline) = Setup(ml, "multiclass");
        var model = pipeline.Fit(data);
        using var temp = new TempDirectory();
        ml.Model.Save(model, data.Schema, temp.File("m.zip"));
        var loaded = new MLContext().Model.Load(temp.File("m.zip"), out _);

        var engine = ml.Model.CreatePredictionEngine<FeaturesOnly, WinePrediction>(loaded);
        var rows = ml.Data.CreateEnumerable<WineRow>(TabularData.LoadWine(ml), false).Select(r => new FeaturesOnly { Features = r.Features }).ToList();
        var scored = ml.Data.CreateEnumerable<WinePrediction>(model.Transform(data), false).ToList();
        for (int i = 0; i < rows.Count; i++)
        {
            var p = engine.Predict(rows[i]);
            Assert.Equal(scored[i].PredictedLabelValue, p.PredictedLabelValue);
            Assert.Equal(scored[i].Score, p.Score);
        }
    }

    [Fact]
    public void CorruptedWeightsFailWithAClearMessage()
    {
        var ml = new MLContext(seed: 8);
        var (data, pipeline) = Setup(ml, "regression");
        var model = pipeline.Fit(data);
        using var temp = new TempDirectory();
        string path = temp.File("model.zip");
        ml.Model.Save(model, data.Schema, path);
        FlipByteInEntry(path, "Weights.bin");

        var error = Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
        Assert.Contains("corrupted (checksum mismatch)", Flatten(error));
    }

    [Fact]
    public void UnknownFormatVersionFailsWithAClearMessage()
    {
        var ml = new MLContext(seed: 9);
        var (data, pipeline) = Setup(ml, "regression");
        var model = pipeline.Fit(data);
        using var temp = new TempDirectory();
        string path = temp.File("model.zip");
        ml.Model.Save(model, data.Schema, path);
        // The component header stores verWrittenCur/verReadableCur; pretend a future version wrote it.
        RewriteModelHeaderVersion(path, 0x00020001);

        var error = Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
        Assert.Contains("model is too new", Flatten(error));
    }

    private static string Flatten(Exception e)
    {
        var messages = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException)
            messages.Add(x.Message);
        return string.Join(" --> ", messages);
    }

    private static void FlipByteInEntry(string zipPath, string entryName)
    {
        using var zip = System.IO.Compression.ZipFile.Open(zipPath, System.IO.Compression.ZipArchiveMode.Update);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith(entryName, StringComparison.Ordinal));
        byte[] bytes;
        using (var s = entry.Open())
        using (var m = new MemoryStream())
        {
            s.CopyTo(m);
            bytes = m.ToArray();
        }
        bytes[bytes.Length / 2] ^= 0x5A;
        string name = entry.FullName;
        entry.Delete();
        using var w = zip.CreateEntry(name).Open();
        w.Write(bytes);
    }

    private static byte[] Read(System.IO.Compression.ZipArchiveEntry entry)
    {
        using var s = entry.Open();
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    private static void RewriteModelHeaderVersion(string zipPath, uint version)
    {
        using var zip = System.IO.Compression.ZipFile.Open(zipPath, System.IO.Compression.ZipArchiveMode.Update);
        var entry = zip.Entries.Single(e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal) && Read(e).AsSpan().IndexOf("MLXNNET\0"u8) >= 0);
        byte[] bytes;
        using (var s = entry.Open())
        using (var m = new MemoryStream())
        {
            s.CopyTo(m);
            bytes = m.ToArray();
        }
        // ML.NET's ModelHeader stores the component's 8-byte model signature (the trailing space as NUL)
        // followed by verWritten and verReadable.
        int at = bytes.AsSpan().IndexOf("MLXNNET\0"u8) + 8;
        BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), version);
        BitConverter.TryWriteBytes(bytes.AsSpan(at + 4, 4), version);
        string name = entry.FullName;
        entry.Delete();
        using var w = zip.CreateEntry(name).Open();
        w.Write(bytes);
    }
}

public sealed class WineRow
{
    [VectorType(13)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public float Label { get; set; }
}

public sealed class WineBinaryRow
{
    [VectorType(13)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public bool Label { get; set; }
}

public sealed class FeaturesOnly
{
    [VectorType(13)]
    public float[] Features { get; set; } = Array.Empty<float>();
}

public sealed class WinePrediction
{
    public float PredictedLabelValue { get; set; }

    public float[] Score { get; set; } = Array.Empty<float>();
}
