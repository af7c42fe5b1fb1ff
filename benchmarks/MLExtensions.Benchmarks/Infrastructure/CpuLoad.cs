using System.Diagnostics;
using System.Globalization;

namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>A point-in-time reading of the machine's CPU counters and this process's CPU time.</summary>
/// <param name="MachineTicks">Busy plus stolen CPU time of the whole machine, in clock ticks; null where unavailable.</param>
/// <param name="ProcessCpu">CPU time used by this process so far.</param>
/// <param name="Timestamp">A <see cref="Stopwatch"/> timestamp.</param>
internal readonly record struct CpuSnapshot(long? MachineTicks, TimeSpan ProcessCpu, long Timestamp);

/// <summary>
/// Measures how many cores other processes (and the hypervisor, as steal time) took while a measurement ran.
/// libtorch splits every operation over all cores and waits for the slowest thread, so on a small machine
/// one busy neighbour slows training by far more than its share; a throughput number taken while others
/// ran is not comparable with one taken on an idle machine, and the report must say so.
/// </summary>
/// <remarks>Linux only (reads <c>/proc/stat</c>); elsewhere the load is reported as unknown.</remarks>
internal static class CpuLoad
{
    // USER_HZ, the unit of /proc/stat. It is 100 on every mainstream Linux architecture and libc;
    // reading sysconf(_SC_CLK_TCK) would need native interop for a value that does not vary in practice.
    private const double TicksPerSecond = 100;

    /// <summary>Reads the counters now.</summary>
    public static CpuSnapshot Take()
    {
        using var process = Process.GetCurrentProcess();
        return new CpuSnapshot(ReadMachineTicks(), process.TotalProcessorTime, Stopwatch.GetTimestamp());
    }

    /// <summary>
    /// The average number of cores used by everything except this process between <paramref name="start"/> and
    /// <paramref name="end"/>; null when the machine counters are unavailable.
    /// </summary>
    public static double? OtherCores(CpuSnapshot start, CpuSnapshot end)
    {
        if (start.MachineTicks is not long before || end.MachineTicks is not long after)
            return null;
        double wall = Stopwatch.GetElapsedTime(start.Timestamp, end.Timestamp).TotalSeconds;
        if (wall <= 0)
            return null;
        double machine = (after - before) / TicksPerSecond;
        double own = (end.ProcessCpu - start.ProcessCpu).TotalSeconds;
        // Tick granularity (10 ms) can make a short interval come out slightly negative.
        return Math.Max(0, (machine - own) / wall);
    }

    /// <summary>user + nice + system + irq + softirq + steal from the aggregate line of /proc/stat.</summary>
    private static long? ReadMachineTicks()
    {
        try
        {
            using var reader = new StreamReader("/proc/stat");
            string? line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal))
                return null;
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // fields: "cpu", user, nice, system, idle, iowait, irq, softirq, steal, ...
            int[] busy = { 1, 2, 3, 6, 7, 8 };
            return busy.Where(i => i < fields.Length).Sum(i => long.Parse(fields[i], CultureInfo.InvariantCulture));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
