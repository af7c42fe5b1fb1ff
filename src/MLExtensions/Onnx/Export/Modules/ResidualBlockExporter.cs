using MLExtensions.Vision;
using TorchSharp;
using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// ResNet blocks (<see cref="BasicBlock"/>, <see cref="Bottleneck"/>): conv → bn pairs with ReLU between them,
/// the shortcut (identity or the downsample convolution), Add, ReLU. The submodules are read by their
/// state-dict names, which are torchvision's and stable.
/// </summary>
internal static class ResidualBlockExporter
{
    public static string Export(ModuleExporter exporter, torch.nn.Module block, string input, string name)
    {
        var children = block.named_children().ToDictionary(c => c.name, c => c.module);
        int pairs = children.ContainsKey("conv3") ? 3 : 2;
        string x = input;
        for (int i = 1; i <= pairs; i++)
        {
            x = ConvolutionExporter.Export(exporter.Writer, (Conv2d)children[$"conv{i}"], x, $"{name}.conv{i}");
            x = BatchNormExporter.Export(exporter.Writer, (BatchNorm2d)children[$"bn{i}"], x, $"{name}.bn{i}");
            if (i < pairs)
                x = ActivationExporter.Relu(exporter.Writer, x, $"{name}.relu{i}");
        }
        string identity = children.TryGetValue("downsample", out var downsample)
            ? exporter.Export(downsample, input, name + ".downsample")
            : input;
        string sum = exporter.Writer.AddNode("Add", new[] { x, identity }, name + ".add");
        return ActivationExporter.Relu(exporter.Writer, sum, name + ".out");
    }
}
