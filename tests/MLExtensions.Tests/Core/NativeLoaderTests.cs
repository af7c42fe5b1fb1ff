using MLExtensions.Core.Native;
using TorchSharp;
using Xunit;

namespace MLExtensions.Tests.Core;

public class NativeLoaderTests
{
    [Fact]
    public void TorchLoadsAndComputes()
    {
        TorchNativeLoader.EnsureLoaded();
        using var a = torch.ones(2, 3);
        using var b = a.sum();
        Assert.Equal(6f, b.item<float>());
    }
}
