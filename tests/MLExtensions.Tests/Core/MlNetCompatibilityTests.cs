using System.Reflection;
using MLExtensions.Core.Internals;
using Xunit;

namespace MLExtensions.Tests.Core;

/// <summary>The load-time check that the ML.NET in the process has every internal the library was compiled against.</summary>
public class MlNetCompatibilityTests
{
    private static Assembly? Genuine(string name) => Assembly.Load(new AssemblyName(name));

    [Fact]
    public void TheMlNetThisBuildRestoredHasEverythingTheLibraryUses()
    {
        var report = MlNetCompatibility.Check(Genuine);

        Assert.Empty(report.Missing);
        // The library uses well over a hundred ML.NET types and members; a check that found few would be checking nothing.
        Assert.True(report.CheckedCount > 100, $"only {report.CheckedCount} references checked");
        Assert.Equal("6.0.0", report.BuiltAgainst);
        Assert.Equal("6.0.0", report.Loaded);
        MlNetCompatibility.EnsureCompatible();
    }

    [Fact]
    public void AnMlNetWithoutTheInternalsIsNamedWithBothVersions()
    {
        // Stand-in for a Microsoft.ML.Data whose internals moved: an assembly that has none of its types.
        var foreign = typeof(object).Assembly;
        var report = MlNetCompatibility.Check(name => name == "Microsoft.ML.Data" ? foreign : Genuine(name));

        Assert.Contains("type Microsoft.ML.Data.RowToRowTransformerBase", report.Missing);
        Assert.DoesNotContain(report.Missing, m => m.Contains("Microsoft.ML.Runtime.IHostEnvironment", StringComparison.Ordinal));
        string message = report.Describe();
        string foreignVersion = foreign.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        Assert.StartsWith("MLExtensions 0.2.0 was built against ML.NET 6.0.0, but this process loaded ML.NET 6.0.0 / " + foreignVersion +
                          " (Microsoft.ML.Core / Microsoft.ML.Data), whose internals differ: ", message);
        Assert.Contains($"{report.Missing.Count} of the {report.CheckedCount} ML.NET types and members MLExtensions uses are missing", message);
        Assert.EndsWith("Reference Microsoft.ML 6.0.x, as the MLExtensions package declares, or use an MLExtensions version built for ML.NET 6.0.0 / " +
                        foreignVersion + ".", message);
    }

    [Fact]
    public void AMissingAssemblyIsReportedNotThrown()
    {
        var report = MlNetCompatibility.Check(name => name == "Microsoft.ML.Core" ? null : Genuine(name));

        Assert.Contains("type Microsoft.ML.Runtime.IHostEnvironment", report.Missing);
        Assert.Contains("not found", report.Loaded);
    }
}
