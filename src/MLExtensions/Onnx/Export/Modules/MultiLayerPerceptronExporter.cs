using MLExtensions.Tabular;

namespace MLExtensions.Onnx.Export;

/// <summary>The tabular MLP: standardizer (when the model uses it), hidden layers, head. Input [N, features].</summary>
internal static class MultiLayerPerceptronExporter
{
    public static string Export(ModuleExporter exporter, MultiLayerPerceptron mlp, string input, string name)
    {
        string x = mlp.Standardizes ? exporter.Export(mlp.Scaler, input, name + ".scaler") : input;
        x = exporter.Export(mlp.Body, x, name + ".body");
        return exporter.Export(mlp.Head, x, name + ".head");
    }
}
