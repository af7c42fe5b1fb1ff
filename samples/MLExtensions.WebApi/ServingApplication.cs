using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace MLExtensions.WebApi;

/// <summary>Builds the web application: services, limits and endpoints. Used by Program, the tests and the load benchmark.</summary>
public static class ServingApplication
{
    /// <summary>Creates the application from command-line arguments (configuration keys such as <c>--Serving:ModelPath=...</c>).</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="configure">Optional last changes to the builder (the benchmark binds to a loopback port with it).</param>
    /// <exception cref="ModelFileException">The model file is missing, does not load, or is not a binary text classifier:
    /// the service refuses to start.</exception>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        AddServices(builder);
        configure?.Invoke(builder);
        var app = builder.Build();
        MapEndpoints(app);
        return app;
    }

    /// <summary>Registers the settings, the model pool, problem details and health checks.</summary>
    public static void AddServices(WebApplicationBuilder builder)
    {
        builder.Services.Configure<ServingOptions>(builder.Configuration.GetSection(ServingOptions.Section));
        var limits = builder.Configuration.GetSection(ServingOptions.Section).Get<ServingOptions>() ?? new ServingOptions();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes);
        builder.Services.AddProblemDetails();
        builder.Services.AddSingleton(services => new ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction>(
            services.GetRequiredService<IOptions<ServingOptions>>(),
            ReviewModelSchema.Validate,
            services.GetRequiredService<ILogger<ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction>>>()));
        // Endpoints depend on the interface only; Microsoft.Extensions.ML's PredictionEnginePool can stand behind it.
        builder.Services.AddSingleton<IModelPredictor<ReviewInput, ReviewPrediction>>(services =>
            services.GetRequiredService<ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction>>());
        builder.Services.AddHealthChecks().AddCheck<ModelHealthCheck>("model");
        // Load the model while the host starts, before requests are accepted: a file that cannot be served stops the
        // start-up with a ModelFileException naming it, instead of failing the first request.
        builder.Services.AddHostedService<ModelLoader>();
    }

    /// <summary>Maps <c>POST /predict</c> and <c>GET /health</c>.</summary>
    public static void MapEndpoints(WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapPost("/predict", PredictAsync);
        app.MapHealthChecks("/health");
    }

    private static async Task<IResult> PredictAsync(HttpRequest request, IOptions<ServingOptions> options,
        IModelPredictor<ReviewInput, ReviewPrediction> predictor, CancellationToken cancellation)
    {
        var body = await PredictRequestReader.ReadAsync(request, options.Value, cancellation);
        if (!body.IsValid)
            return Results.ValidationProblem(body.Errors!, statusCode: body.StatusCode,
                title: body.StatusCode == StatusCodes.Status400BadRequest ? "The request is not valid." : null);
        var input = new ReviewInput { Text = body.Text! };
        if (predictor is ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction> pool)
        {
            var prediction = pool.Predict(input, out int version);
            return Results.Ok(new PredictResponse(prediction.PredictedLabel, prediction.Probability, prediction.Score, version));
        }
        var other = predictor.Predict(input);
        return Results.Ok(new PredictResponse(other.PredictedLabel, other.Probability, other.Score, ModelVersion: 0));
    }

    /// <summary>Creates the model pool (which loads and checks the file) when the host starts.</summary>
    private sealed class ModelLoader : IHostedService
    {
        private readonly IServiceProvider _services;

        public ModelLoader(IServiceProvider services) => _services = services;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            int threads = _services.GetRequiredService<IOptions<ServingOptions>>().Value.TorchThreads;
            if (threads > 0)
            {
                MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
                TorchSharp.torch.set_num_threads(threads);
            }
            _services.GetRequiredService<ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction>>();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Healthy while a model serves; degraded (still serving the old model) after a reload that failed.</summary>
    private sealed class ModelHealthCheck : IHealthCheck
    {
        private readonly ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction> _pool;

        public ModelHealthCheck(ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction> pool) => _pool = pool;

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var data = new Dictionary<string, object>
            {
                ["modelPath"] = _pool.ModelPath,
                ["modelVersion"] = _pool.ModelVersion,
                ["loadedAt"] = _pool.LoadedAt.ToString("O"),
            };
            return Task.FromResult(_pool.LastReloadError is { } error
                ? HealthCheckResult.Degraded($"Serving model version {_pool.ModelVersion}; the newer file did not load: {error}", data: data)
                : HealthCheckResult.Healthy($"Serving model version {_pool.ModelVersion} from {_pool.ModelPath}", data));
        }
    }
}
