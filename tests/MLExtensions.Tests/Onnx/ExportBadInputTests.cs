using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Onnx.Export;
using MLExtensions.Tabular;
using MLExtensions.Tests.Support;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Onnx;

/// <summary>What ExportToOnnx accepts and rejects, where it writes, and what the file describes.</summary>
public class ExportBadInputTests
{
    private static (MLContext Ml, IDataView Raw, ITransformer Chain) TrainedChain()
    {
        var ml = new MLContext(seed: 1);
        var raw = TabularData.LoadWine(ml);
        var chain = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkOptions { HiddenLayers = new[] { 8 }, Epochs = 2, Seed = 1 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"))
            .Fit(raw);
        return (ml, raw, chain);
    }

    [Fact]
    public void ChainExportsItsNetworkWithDynamicBatchAndMetadata()
    {
        var (ml, raw, chain) = TrainedChain();
        using var temp = new TempDirectory();
        ml.Model.ExportToOnnx(chain, raw.Schema, temp.File("wine.onnx"));

        using var session = new InferenceSession(temp.File("wine.onnx"));
        Assert.Equal(new[] { -1, 13 }, session.InputMetadata["features"].Dimensions);
        Assert.Equal(new[] { "logits", "probabilities" }, session.OutputMetadata.Keys.OrderBy(k => k));
        Assert.Equal(-1, session.OutputMetadata["logits"].Dimensions[0]);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("MulticlassClassification", metadata["task"]);
        Assert.Equal("3", metadata["class_count"]);
        Assert.Equal("[\"Features\"]", metadata["source_columns"]);
        Assert.Contains("standardization", metadata["preprocessing"]);
        Assert.Equal("MLExtensions", session.ModelMetadata.ProducerName);
        // Only the network is in the file, and nothing else is left next to it.
        Assert.Equal(new[] { temp.File("wine.onnx") }, Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void ModelsWithoutANetworkAreRejected()
    {
        var ml = new MLContext(seed: 1);
        var raw = TabularData.LoadWine(ml);
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(raw);
        using var temp = new TempDirectory();
        var e = Assert.Throws<ArgumentException>(() => ml.Model.ExportToOnnx(normalizer, raw.Schema, temp.File("x.onnx")));
        Assert.Contains("NormalizingTransformer", e.Message);
        Assert.Contains("ConvertToOnnx", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(temp.Path));
    }

    [Fact]
    public void SchemaThatDoesNotFitTheNetworkIsRejected()
    {
        var (ml, _, chain) = TrainedChain();
        var other = TabularData.LoadBreastCancer(ml); // 30 features instead of 13
        using var temp = new TempDirectory();
        var e = Assert.Throws<ArgumentException>(() => ml.Model.ExportToOnnx(chain, other.Schema, temp.File("x.onnx")));
        Assert.Equal("inputSchema", e.ParamName);
        Assert.Empty(Directory.GetFileSystemEntries(temp.Path));
    }

    [Fact]
    public void MissingDirectoryIsNamedAndNothingIsWritten()
    {
        var (ml, raw, chain) = TrainedChain();
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "no-such-dir", "model.onnx");
        var e = Assert.ThrowsAny<IOException>(() => ml.Model.ExportToOnnx(chain, raw.Schema, path));
        Assert.Contains(path, e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(temp.Path));
    }

    [Fact]
    public void PathThatIsADirectoryIsNamedAndLeftAlone()
    {
        var (ml, raw, chain) = TrainedChain();
        using var temp = new TempDirectory();
        string path = temp.File("model.onnx");
        Directory.CreateDirectory(path);
        var e = Assert.ThrowsAny<IOException>(() => ml.Model.ExportToOnnx(chain, raw.Schema, path));
        Assert.Contains(path, e.Message);
        Assert.True(Directory.Exists(path));
        Assert.Equal(new[] { path }, Directory.GetFileSystemEntries(temp.Path));
    }

    [Fact]
    public void FailureWhileWritingLeavesNoPartialFileAndKeepsThePreviousOne()
    {
        using var temp = new TempDirectory();
        string fresh = temp.File("fresh.onnx"), existing = temp.File("existing.onnx");
        File.WriteAllText(existing, "previous");
        foreach (string path in new[] { fresh, existing })
        {
            Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
            {
                stream.Write(new byte[1000]);
                throw new InvalidOperationException("serialization failed half-way");
            }));
        }
        Assert.False(File.Exists(fresh));
        Assert.Equal("previous", File.ReadAllText(existing));
        Assert.Equal(new[] { existing }, Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void UnknownModuleTypesAreNamed()
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        using var conv1d = torch.nn.Conv1d(2, 2, 3);
        var exporter = new ModuleExporter(new ProtoGraphWriter(ExportedNetwork.OpsetVersion, "test"));
        var e = Assert.Throws<NotSupportedException>(() => exporter.Export(torch.nn.Sequential(("layer", conv1d)), "x", "net"));
        Assert.Contains("TorchSharp.Modules.Conv1d", e.Message);
        Assert.Contains("net.layer", e.Message);
    }
}
