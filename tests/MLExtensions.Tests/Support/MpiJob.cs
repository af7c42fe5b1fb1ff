using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Xunit;

namespace MLExtensions.Tests.Support;

/// <summary>
/// Runs MLExtensions.MpiWorker (training on the wine data) under <c>mpirun</c> with N ranks, or as a plain process, and
/// reads what every rank wrote. Without Open MPI the tests fail with the command that installs it.
/// </summary>
public static class MpiJob
{
    /// <summary>How to get Open MPI, shown when it is missing.</summary>
    public const string InstallHint = "Open MPI is not installed (no 'mpirun' on the PATH); the data-parallel tests need it: apt-get install openmpi-bin";

    /// <summary>Runs the worker under mpirun with <paramref name="ranks"/> processes.</summary>
    public static JobResult Run(int ranks, params string[] settings) => Start(ranks, settings, TimeSpan.FromSeconds(120));

    /// <summary>Runs the worker as an ordinary process (no mpirun).</summary>
    public static JobResult RunAlone(params string[] settings) => Start(0, settings, TimeSpan.FromSeconds(120));

    /// <summary>Runs the worker; the job is killed after <paramref name="timeout"/> (a hang fails the test, it does not block the suite).</summary>
    public static JobResult Start(int ranks, string[] settings, TimeSpan timeout)
    {
        var output = new TempDirectory();
        string directory = typeof(MpiJob).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "MpiWorkerDirectory").Value!;
        string dll = Path.Combine(directory, "MLExtensions.MpiWorker.dll");
        Assert.True(File.Exists(dll), $"MpiWorker was not built: {dll}");
        var start = new ProcessStartInfo(ranks > 0 ? FindMpirun() : "dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        if (ranks > 0)
        {
            // Root in containers and CI, no ssh (one machine), no pinning (a rank per core would oversubscribe the other tests),
            // one torch thread per rank, no terminal escapes in redirected output.
            start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
            start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
            foreach (string a in new[] { "-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none", "--mca", "plm", "isolated",
                "-x", "TERM=dumb", "-x", "OMP_NUM_THREADS=1", "dotnet" })
                start.ArgumentList.Add(a);
        }
        foreach (string a in new[] { dll, TabularData.Path("wine.csv"), output.Path }.Concat(settings))
            start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"The job did not end within {timeout.TotalSeconds} s (a rank hangs). Output: {stdout.Result} {stderr.Result}");
        }
        process.WaitForExit();
        var ranksWritten = Directory.GetFiles(output.Path, "rank*.txt").OrderBy(f => f, StringComparer.Ordinal).Select(RankResult.Read).ToList();
        output.Dispose();
        return new JobResult(process.ExitCode, stdout.Result, stderr.Result, clock.Elapsed, ranksWritten);
    }

    private static string FindMpirun()
    {
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, "mpirun");
            if (File.Exists(candidate))
                return candidate;
        }
        Assert.Fail(InstallHint);
        return "";
    }
}

/// <summary>What one job did.</summary>
public sealed record JobResult(int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed, IReadOnlyList<RankResult> Ranks)
{
    /// <summary>Asserts the job succeeded with <paramref name="ranks"/> ranks and returns rank 0's result.</summary>
    public RankResult Succeeded(int ranks)
    {
        Assert.True(ExitCode == 0, $"The job failed ({ExitCode}): {StandardOutput}\n{StandardError}");
        Assert.Equal(ranks, Ranks.Count);
        Assert.All(Ranks, r => Assert.Equal(ranks, r.Size));
        return Ranks[0];
    }
}

/// <summary>One rank's final state, as written by the worker.</summary>
public sealed class RankResult
{
    public int Size { get; private init; }

    public bool MpiLoaded { get; private init; }

    public string StopReason { get; private init; } = "";

    public int BestEpoch { get; private init; }

    public int EpochsCompleted { get; private init; }

    /// <summary>Per epoch: training loss, validation loss, validation metric (NaN when absent).</summary>
    public List<double[]> History { get; } = new();

    /// <summary>Every state tensor (parameters and buffers) by name.</summary>
    public Dictionary<string, float[]> Weights { get; } = new();

    public static RankResult Read(string path)
    {
        var lines = File.ReadAllLines(path);
        string Value(string key) => lines.First(l => l.StartsWith(key + " ", StringComparison.Ordinal))[(key.Length + 1)..];
        var result = new RankResult
        {
            Size = int.Parse(Value("size"), CultureInfo.InvariantCulture),
            MpiLoaded = bool.Parse(Value("mpi-loaded")),
            StopReason = Value("stop"),
            BestEpoch = int.Parse(Value("best"), CultureInfo.InvariantCulture),
            EpochsCompleted = int.Parse(Value("epochs"), CultureInfo.InvariantCulture),
        };
        static double Number(string s) => s == "-" ? double.NaN : double.Parse(s, CultureInfo.InvariantCulture);
        foreach (var parts in lines.Where(l => l.StartsWith("epoch ", StringComparison.Ordinal)).Select(l => l.Split(' ')))
            result.History.Add(new[] { Number(parts[2]), Number(parts[3]), Number(parts[4]) });
        foreach (var parts in lines.Where(l => l.StartsWith("weight ", StringComparison.Ordinal)).Select(l => l.Split(' ')))
            result.Weights[parts[1]] = parts.Skip(2).Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return result;
    }

    /// <summary>The largest absolute difference between this rank's tensors and <paramref name="other"/>'s.</summary>
    public double MaxWeightDifference(RankResult other)
    {
        Assert.Equal(Weights.Keys.OrderBy(k => k), other.Weights.Keys.OrderBy(k => k));
        return Weights.Max(kv => kv.Value.Zip(other.Weights[kv.Key], (a, b) => Math.Abs((double)a - b)).DefaultIfEmpty(0).Max());
    }
}
