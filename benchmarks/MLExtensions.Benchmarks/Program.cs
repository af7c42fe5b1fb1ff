using System.Globalization;
using MLExtensions.Benchmarks;
using MLExtensions.Benchmarks.Infrastructure;

// Usage: MLExtensions.Benchmarks <benchmark> [options]. Each benchmark is one class (one file under
// Benchmarks/); list new ones here.
IBenchmark[] benchmarks =
{
    new MlpBenchmark(),
    new MlpPartsBenchmark(),
    new VisionBenchmark(),
    new TextBenchmark(),
    new DistillationBenchmark(),
    new QuantizeBenchmark(),
    new QuantizeModelsBenchmark(),
    new ServeBenchmark(),
    new SweepBenchmark(),
    new ClipBenchmark(),
    new DistributedBenchmark(),
    new ExplainBenchmark(),
    new PrecisionBenchmark(),
    new DefaultsBenchmark(),
};

// Numbers in reports must not depend on the machine's locale (they are pasted into issues and compared).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    WriteUsage(Console.Out);
    return args.Length == 0 ? 2 : 0;
}

var benchmark = benchmarks.FirstOrDefault(b => string.Equals(b.Name, args[0], StringComparison.OrdinalIgnoreCase));
if (benchmark is null)
{
    Console.Error.WriteLine($"Unknown benchmark '{args[0]}'.");
    WriteUsage(Console.Error);
    return 2;
}

BenchmarkArguments arguments;
try
{
    arguments = BenchmarkArguments.Parse(args[1..], benchmark.Options);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    WriteUsage(Console.Error);
    return 2;
}

try
{
    return benchmark.Run(arguments, Console.Out);
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException)
{
    // Bad option values and missing or corrupt data files: the message says what to fix; no stack trace needed.
    Console.Error.WriteLine(e.Message);
    return 1;
}

void WriteUsage(TextWriter writer)
{
    writer.WriteLine("usage: dotnet run -c Release --project benchmarks/MLExtensions.Benchmarks -- <benchmark> [options]");
    foreach (var b in benchmarks)
    {
        writer.WriteLine();
        writer.WriteLine($"  {b.Name}: {b.Description}");
        var heads = b.Options.Select(o => $"--{o.Name}" + (o.IsFlag ? "" : $" <{o.ValueName}>")).ToList();
        int width = heads.Max(h => h.Length) + 2;
        for (int i = 0; i < heads.Count; i++)
            writer.WriteLine($"    {heads[i].PadRight(width)}{b.Options[i].Description}");
    }
}
