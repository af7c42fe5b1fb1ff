namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>Loads libtorch and applies the common <c>--threads</c> option of the benchmarks that train with TorchSharp.</summary>
internal static class TorchSetup
{
    /// <summary>The option's description, for a benchmark's option list.</summary>
    public static BenchmarkOption ThreadsOption(string note = "") =>
        new("threads", "N", "torch threads (default: all processors" + (note.Length > 0 ? "; " + note : "") + ")");

    /// <summary>Loads the native library (before any torch call) and sets the thread count when <c>--threads</c> is given.</summary>
    public static void Apply(BenchmarkArguments arguments)
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        if (arguments.OptionalInt("threads") is int threads)
            TorchSharp.torch.set_num_threads(threads);
    }
}
