using MLExtensions.Core.Native;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Vision;

/// <summary>Small helpers shared by the Vision tests.</summary>
internal static class VisionTestNetworks
{
    /// <summary>Settings that keep VGG cheap: names and layer counts do not depend on the width.</summary>
    public static ImageNetworkSettings Narrow() => new() { VggWidthMultiplier = 0.125 };

    public static ImageNetwork Create(ImageArchitecture architecture, int channels, int size, int classes = 10, ImageNetworkSettings? settings = null, ulong seed = 1)
    {
        TorchNativeLoader.EnsureLoaded();
        return ImageNetworks.Create(architecture, channels, classes, size, size, settings ?? Narrow(), new Generator(seed, CPU));
    }

    /// <summary>Random images [batch, channels, size, size] from a fixed seed.</summary>
    public static Tensor Images(int batch, int channels, int size, ulong seed = 7) =>
        torch.randn(new long[] { batch, channels, size, size }, generator: new Generator(seed, CPU));

    /// <summary>Runs the network in evaluation mode without gradients.</summary>
    public static Tensor Predict(ImageNetwork network, Tensor images)
    {
        network.eval();
        using var noGrad = torch.no_grad();
        return network.call(images);
    }

    /// <summary>
    /// State-dict keys in PyTorch's order: module by module in registration order, each module's own
    /// parameters, then its own buffers. TorchSharp's <c>state_dict()</c> lists all parameters first and all
    /// buffers after them, so the two orders differ (the set of keys is the same).
    /// </summary>
    public static List<string> KeysInPyTorchOrder(nn.Module module)
    {
        var keys = new List<string>();
        void Visit(nn.Module m, string prefix)
        {
            foreach (var (name, _) in m.named_parameters(recurse: false))
                keys.Add(prefix + name);
            foreach (var (name, _) in m.named_buffers(recurse: false))
                keys.Add(prefix + name);
            foreach (var (name, child) in m.named_children())
                Visit(child, prefix + name + ".");
        }
        Visit(module, "");
        return keys;
    }

    /// <summary>Same shape and values. (TorchSharp's <c>torch.equal</c> is element-wise, unlike PyTorch's; <c>Tensor.Equals</c> is PyTorch's equal.)</summary>
    public static bool Identical(Tensor a, Tensor b) => a.Equals(b);

    public static void AssertSameTensors(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, IEnumerable<string>? except = null)
    {
        var skip = new HashSet<string>(except ?? Enumerable.Empty<string>());
        foreach (var (key, tensor) in expected)
        {
            if (!skip.Contains(key))
                Xunit.Assert.True(Identical(tensor, actual[key]), $"{key} differs");
        }
    }
}
