using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Vision;
using TorchSharp;
using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Emits the ONNX nodes of a TorchSharp module by dispatching on its type to the exporter for that module.
/// Containers (Sequential, networks, blocks) recurse through here, so a new layer type needs one new case.
/// </summary>
internal sealed class ModuleExporter
{
    public ModuleExporter(IOnnxGraphWriter writer) => Writer = writer;

    /// <summary>Where the nodes go.</summary>
    public IOnnxGraphWriter Writer { get; }

    /// <summary>Emits <paramref name="module"/> applied to <paramref name="input"/> and returns the name of its output.</summary>
    /// <exception cref="NotSupportedException">The module (or one inside it) has no ONNX exporter.</exception>
    public string Export(torch.nn.Module module, string input, string name) => module switch
    {
        Sequential sequential => ExportSequence(sequential, input, name),
        Linear linear => LinearExporter.Export(Writer, linear, input, name),
        Conv2d conv => ConvolutionExporter.Export(Writer, conv, input, name),
        BatchNorm norm => BatchNormExporter.Export(Writer, norm, input, name),
        ReLU => ActivationExporter.Relu(Writer, input, name),
        Tanh => ActivationExporter.Tanh(Writer, input, name),
        Sigmoid => ActivationExporter.Sigmoid(Writer, input, name),
        LeakyReLU leaky => ActivationExporter.LeakyRelu(Writer, leaky, input, name),
        GELU gelu => ActivationExporter.Gelu(Writer, gelu, input, name),
        MaxPool2d pool => PoolingExporter.Max(Writer, pool, input, name),
        AvgPool2d pool => PoolingExporter.Average(Writer, pool, input, name),
        AdaptiveAvgPool2d pool when PoolingExporter.IsGlobal(pool) => PoolingExporter.Global(Writer, input, name),
        Flatten flatten => ExportFlatten(flatten, input, name),
        // Dropout is the identity in evaluation mode, the only mode an exported model runs in.
        SeededDropout or Dropout => input,
        FeatureStandardizer scaler => FeatureStandardizerExporter.Export(Writer, scaler, input, name),
        BasicBlock or Bottleneck => ResidualBlockExporter.Export(this, module, input, name),
        MultiLayerPerceptron mlp => MultiLayerPerceptronExporter.Export(this, mlp, input, name),
        ImageClassifierNetwork image => ImageNetworkExporter.Export(this, image, input, name),
        _ => throw new NotSupportedException(
            $"ONNX export does not support the module type {module.GetType().FullName} ('{name}'). " +
            "Supported: the library's MLP, CNN (DefaultCnn, LeNet-5, AlexNet, VGG, ResNet) and BERT text classifier networks and their layers."),
    };

    private string ExportSequence(Sequential sequential, string input, string name)
    {
        string x = input;
        foreach (var (childName, child) in sequential.named_children())
            x = Export(child, x, $"{name}.{childName}");
        return x;
    }

    private string ExportFlatten(Flatten flatten, string input, string name)
    {
        // ONNX Flatten always produces 2-D; it matches torch.flatten only when flattening to the last dimension.
        if (flatten.end_dim != -1)
            throw new NotSupportedException($"ONNX export of Flatten '{name}' with end_dim {flatten.end_dim} is not supported.");
        return Writer.AddNode("Flatten", new[] { input }, name, NodeAttribute.Of("axis", flatten.start_dim));
    }
}
