using MLExtensions.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Image classifiers: the preprocessing, then the backbone — a <see cref="SequentialImageNetwork"/> (DefaultCnn,
/// LeNet-5, AlexNet, VGG: features → adaptive pool → flatten → classifier) or a <see cref="ResNet"/> (stem →
/// layers → global pool → fc). Input: the flat pixel vector [N, C·H·W] the transformer reads.
/// </summary>
internal static class ImageNetworkExporter
{
    public static string Export(ModuleExporter exporter, ImageClassifierNetwork classifier, string input, string name)
    {
        var preprocess = classifier.Preprocess;
        string x = ImagePreprocessorExporter.Export(exporter.Writer, preprocess, input, name + ".preprocess");
        var imageShape = new long[] { 1, preprocess.OutputChannels, preprocess.OutputSize, preprocess.OutputSize };
        if (classifier.AveragesMirroredView)
            x = StackMirroredView(exporter.Writer, x, name + ".mirror");
        string logits = classifier.Network switch
        {
            SequentialImageNetwork sequential => ExportSequential(exporter, sequential, x, imageShape, name + ".net"),
            ResNet resnet => ExportResNet(exporter, resnet, x, name + ".net", includeHead: true),
            var other => throw new NotSupportedException($"ONNX export does not support the image network type {other.GetType().FullName}."),
        };
        return classifier.AveragesMirroredView ? AverageViews(exporter.Writer, logits, classifier.Network.ClassCount, name + ".mirror") : logits;
    }

    /// <summary>
    /// The features a <see cref="ResNet"/> classifier's head reads (preprocessing, stem, stages, global pool; no fc):
    /// [N, C·H·W] pixels → [N, 512], as <see cref="ImageClassifierNetwork.ExtractFeatures"/>. Used by locked image towers.
    /// </summary>
    public static string ExportFeatures(ModuleExporter exporter, ImageClassifierNetwork classifier, string input, string name)
    {
        if (classifier.Network is not ResNet resnet || classifier.AveragesMirroredView)
            throw new NotSupportedException($"ONNX export of image features supports ResNet towers without mirrored views; found {classifier.Network.GetType().Name}.");
        string x = ImagePreprocessorExporter.Export(exporter.Writer, classifier.Preprocess, input, name + ".preprocess");
        return ExportResNet(exporter, resnet, x, name + ".net", includeHead: false);
    }

    /// <summary>[N, C, H, W] → [2N, C, H, W]: the images, then the same images mirrored left-right (a reversed Slice on W).</summary>
    private static string StackMirroredView(IOnnxGraphWriter writer, string images, string name)
    {
        string mirrored = writer.AddNode("Slice", new[]
        {
            images, writer.AddLongs(name + ".start", -1), writer.AddLongs(name + ".end", long.MinValue),
            writer.AddLongs(name + ".axis", 3), writer.AddLongs(name + ".step", -1),
        }, name + ".mirrored");
        return writer.AddNode("Concat", new[] { images, mirrored }, name + ".views", NodeAttribute.Of("axis", 0L));
    }

    /// <summary>[2N, K] logits of both views → [N, K] mean; the axes attribute form of ReduceMean holds up to opset 17, the newest we write.</summary>
    private static string AverageViews(IOnnxGraphWriter writer, string logits, int classes, string name)
    {
        string perView = writer.AddNode("Reshape", new[] { logits, writer.AddLongs(name + ".view_shape", 2, -1, classes) }, name + ".per_view");
        return writer.AddNode("ReduceMean", new[] { perView }, name + ".mean", NodeAttribute.IntList("axes", 0L), NodeAttribute.Of("keepdims", 0L));
    }

    private static string ExportSequential(ModuleExporter exporter, SequentialImageNetwork network, string input, long[] imageShape, string name)
    {
        var children = network.named_children().ToDictionary(c => c.name, c => c.module);
        var features = (Sequential)children["features"];
        var pool = (AdaptiveAvgPool2d)children["avgpool"];
        // The adaptive pool's ONNX form depends on the feature-map size; the cheapest exact way to know it is one
        // forward of the convolutional part on a blank image of the network's input size.
        long[] mapShape;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var blank = torch.zeros(imageShape);
            mapShape = features.call(blank).shape;
        }
        string x = exporter.Export(features, input, name + ".features");
        x = PoolingExporter.Adaptive(exporter.Writer, pool, x, mapShape[2], mapShape[3], name + ".avgpool");
        x = exporter.Writer.AddNode("Flatten", new[] { x }, name + ".flatten", NodeAttribute.Of("axis", 1L));
        return exporter.Export(children["classifier"], x, name + ".classifier");
    }

    private static string ExportResNet(ModuleExporter exporter, ResNet network, string input, string name, bool includeHead)
    {
        // Children come in torchvision's registration order: conv1, bn1, relu, [maxpool], layer1…layer4, avgpool, fc.
        string x = input;
        foreach (var (childName, child) in network.named_children())
        {
            if (!includeHead && ReferenceEquals(child, network.Head))
                continue;
            string childPath = $"{name}.{childName}";
            x = childName switch
            {
                "avgpool" => exporter.Writer.AddNode("Flatten", new[] { exporter.Export(child, x, childPath) }, name + ".flatten", NodeAttribute.Of("axis", 1L)),
                _ => exporter.Export(child, x, childPath),
            };
        }
        return x;
    }
}
