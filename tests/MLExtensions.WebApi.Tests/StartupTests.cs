using System.IO.Compression;
using Microsoft.ML;
using MLExtensions.Tabular;
using Xunit;

namespace MLExtensions.WebApi.Tests;

/// <summary>A model file that cannot be served stops the start-up with an error naming the file.</summary>
public sealed class StartupTests : IClassFixture<ReviewModels>
{
    private readonly ReviewModels _models;

    public StartupTests(ReviewModels models) => _models = models;

    [Fact]
    public void AMissingFileIsNamed()
    {
        using var folder = _models.NewFolder();
        string path = folder.File("absent.zip");

        var error = StartAndExpectFailure(path);

        Assert.Equal($"Cannot serve the model file '{path}': the file does not exist. Train one with `dotnet run --project samples/MLExtensions.WebApi -- train <path>`, or set Serving:ModelPath.", error.Message);
    }

    [Fact]
    public void ATruncatedZipIsNamed()
    {
        using var folder = _models.NewFolder();
        string path = folder.File("truncated.zip");
        var bytes = File.ReadAllBytes(_models.First);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());

        var error = StartAndExpectFailure(path);

        Assert.StartsWith($"Cannot serve the model file '{path}': it is not a loadable ML.NET model (truncated, corrupted, or saved by another version of MLExtensions or ML.NET): ", error.Message);
    }

    [Fact]
    public void AModelFromANewerLibraryVersionIsNamed()
    {
        using var folder = _models.NewFolder();
        string path = folder.File("newer.zip");
        File.Copy(_models.First, path);
        RewriteComponentVersion(path, "MLXTXTCL"u8.ToArray(), 0x00020001);

        var error = StartAndExpectFailure(path);

        Assert.StartsWith($"Cannot serve the model file '{path}': it is not a loadable ML.NET model", error.Message);
        Assert.Contains("model is too new", error.Message);
    }

    [Fact]
    public void AModelWithoutATextColumnIsNamedWithWhatItHas()
    {
        using var folder = _models.NewFolder();
        string path = folder.File("tabular.zip");
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new VectorRow { Features = new[] { i % 2f, 1f }, Label = i % 2 == 0 }));
        var model = ml.BinaryClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { Epochs = 2 }).Fit(data);
        ml.Model.Save(model, data.Schema, path);

        var error = StartAndExpectFailure(path);

        Assert.Equal($"Cannot serve the model file '{path}': the model's input has no column 'Text' (it has: Features, Label); " +
                     "this service sends each review in a text column named 'Text'.", error.Message);
    }

    private static ModelFileException StartAndExpectFailure(string path)
    {
        // WebApplicationFactory runs Program on its own thread; when Program throws during startup, the factory sometimes
        // reports an ObjectDisposedException of its service provider instead of Program's exception (a race inside the
        // factory's deferred host, seen in one CI run of three). A second start sees Program's exception again.
        Exception? error = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            using var factory = new ServingFactory(path);
            error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
            for (Exception? e = error; e is not null; e = e.InnerException)
            {
                if (e is ModelFileException found)
                    return found;
            }
            if (error is not ObjectDisposedException)
                break;
        }
        throw new Xunit.Sdk.XunitException("expected a ModelFileException, got: " + error);
    }

    /// <summary>Makes a saved component claim a future format version (ML.NET's header: 8-byte signature, then the versions).</summary>
    private static void RewriteComponentVersion(string zipPath, byte[] signature, uint version)
    {
        using var zip = ZipFile.Open(zipPath, ZipArchiveMode.Update);
        foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal)).ToList())
        {
            byte[] bytes;
            using (var stream = entry.Open())
            using (var copy = new MemoryStream())
            {
                stream.CopyTo(copy);
                bytes = copy.ToArray();
            }
            int at = bytes.AsSpan().IndexOf(signature);
            if (at < 0)
                continue;
            BitConverter.TryWriteBytes(bytes.AsSpan(at + 8, 4), version);
            BitConverter.TryWriteBytes(bytes.AsSpan(at + 12, 4), version);
            string name = entry.FullName;
            entry.Delete();
            using var writer = zip.CreateEntry(name).Open();
            writer.Write(bytes);
            return;
        }
        throw new InvalidOperationException("no component with that signature in " + zipPath);
    }

    public sealed class VectorRow
    {
        [Microsoft.ML.Data.VectorType(2)]
        public float[] Features { get; set; } = Array.Empty<float>();

        public bool Label { get; set; }
    }
}
