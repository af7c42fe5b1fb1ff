namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>Finds the repository root, so default data paths work from any working directory.</summary>
internal static class RepositoryPaths
{
    private const string SolutionFile = "MLExtensions.sln";

    /// <summary>
    /// The folder holding <c>MLExtensions.sln</c>, searched upwards from the working directory and then from
    /// the program's own folder (<c>dotnet run --project</c> may be started from anywhere).
    /// </summary>
    /// <exception cref="InvalidOperationException">Neither search finds the solution file.</exception>
    public static string Root() =>
        FindUpwards(Environment.CurrentDirectory) ?? FindUpwards(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException(
            $"Could not find {SolutionFile} above '{Environment.CurrentDirectory}' or '{AppContext.BaseDirectory}'. " +
            "Run the benchmark from inside the repository, or pass every path explicitly.");

    private static string? FindUpwards(string start)
    {
        for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, SolutionFile)))
                return directory.FullName;
        }
        return null;
    }
}
