using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace MLExtensions.WebApi.Tests;

/// <summary>The serving sample hosted in memory, serving <paramref name="modelPath"/>.</summary>
public sealed class ServingFactory(string modelPath, int maxTextLength = 200, int maxBodyBytes = 4096) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Serving:ModelPath", modelPath);
        builder.UseSetting("Serving:MaxTextLength", maxTextLength.ToString());
        builder.UseSetting("Serving:MaxRequestBodyBytes", maxBodyBytes.ToString());
        builder.UseSetting("Serving:ReloadDelay", "00:00:00.100");
    }
}
