namespace MLExtensions.WebApi;

/// <summary>Settings of the serving sample, bound from the configuration section <c>Serving</c>
/// (appsettings.json, environment variables such as <c>Serving__ModelPath</c>, or <c>--Serving:ModelPath=...</c>).</summary>
public sealed class ServingOptions
{
    /// <summary>The configuration section these settings are read from.</summary>
    public const string Section = "Serving";

    /// <summary>The saved model (an <c>mlContext.Model.Save</c> zip of a binary text classifier with a <c>Text</c> input column).
    /// The file is watched: replacing it loads the new model without failing requests in flight.</summary>
    public string ModelPath { get; set; } = "model.zip";

    /// <summary>Longest accepted review, in characters; longer texts get a 400 naming the <c>text</c> field.</summary>
    public int MaxTextLength { get; set; } = 5_000;

    /// <summary>Largest accepted request body, in bytes; larger bodies get a 413. Also set as Kestrel's limit.</summary>
    public int MaxRequestBodyBytes { get; set; } = 32 * 1024;

    /// <summary>Prediction engines kept per model; requests beyond that create engines that are dropped after use.</summary>
    public int MaxPooledEngines { get; set; } = Math.Max(4, 2 * Environment.ProcessorCount);

    /// <summary>libtorch intra-op threads for the whole process (default 1). A server gets its parallelism from concurrent
    /// requests; splitting each request's operations over all cores as well oversubscribes them, and libtorch's threads wait
    /// for the slowest one, which makes every request slower. 0 keeps libtorch's default (one per core).</summary>
    public int TorchThreads { get; set; } = 1;

    /// <summary>How long the file must be quiet after a change before it is reloaded (writers often write in several steps).</summary>
    public TimeSpan ReloadDelay { get; set; } = TimeSpan.FromMilliseconds(250);
}
