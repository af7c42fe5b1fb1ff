namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>
/// A benchmark the program can run by name. Add one class per benchmark (one file under
/// <c>Benchmarks/</c>) and list it in <c>Program.cs</c>; the program parses the options it declares.
/// </summary>
internal interface IBenchmark
{
    /// <summary>The name typed on the command line, lower case (e.g. "mlp").</summary>
    string Name { get; }

    /// <summary>One line saying what is measured, shown in the usage text.</summary>
    string Description { get; }

    /// <summary>The options the benchmark accepts; anything else on the command line is an error.</summary>
    IReadOnlyList<BenchmarkOption> Options { get; }

    /// <summary>Runs the benchmark and writes its report to <paramref name="output"/>.</summary>
    /// <returns>The process exit code: 0 when the benchmark ran (whether or not it met its target).</returns>
    int Run(BenchmarkArguments arguments, TextWriter output);
}
