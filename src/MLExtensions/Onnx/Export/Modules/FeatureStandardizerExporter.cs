using MLExtensions.Core;

namespace MLExtensions.Onnx.Export;

/// <summary>The MLP's built-in standardization, (x − mean) · (1/std), with the stored statistics as constants.</summary>
internal static class FeatureStandardizerExporter
{
    public static string Export(IOnnxGraphWriter writer, FeatureStandardizer scaler, string input, string name)
    {
        string centred = writer.AddNode("Sub", new[] { input, writer.AddFloats(name + ".mean", scaler.Mean) }, name + ".centred");
        return writer.AddNode("Mul", new[] { centred, writer.AddFloats(name + ".inv_std", scaler.InverseStd) }, name);
    }
}
