using MLExtensions.WebApi;

// `dotnet run --project samples/MLExtensions.WebApi -- train model.zip` fine-tunes a review classifier and saves it;
// `dotnet run --project samples/MLExtensions.WebApi -- --Serving:ModelPath=model.zip` serves it (see README.md here).
if (args.Length > 0 && args[0] == "train")
    return TrainCommand.Run(args.Skip(1).ToArray());

var app = ServingApplication.Build(args);
app.Run();
return 0;

/// <summary>The web application's entry point; public so that tests can host it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program
{
}
