using MLExtensions.WebApi;

// `dotnet run --project samples/MLExtensions.WebApi -- train model.zip` fine-tunes a review classifier and saves it;
// `dotnet run --project samples/MLExtensions.WebApi -- --Serving:ModelPath=model.zip` serves it (see README.md here).
// `warm-up` loads TorchSharp's native library once and exits: run it while building a container image, so the GLIBCXX
// fix (docs/deployment.md) is applied inside the image and the application folder may be read-only afterwards.
if (args.Length > 0 && args[0] == "train")
    return TrainCommand.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "warm-up")
{
    MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
    Console.WriteLine("TorchSharp's native library loads from " + AppContext.BaseDirectory);
    return 0;
}

var app = ServingApplication.Build(args);
app.Run();
return 0;

/// <summary>The web application's entry point; public so that tests can host it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program
{
}
