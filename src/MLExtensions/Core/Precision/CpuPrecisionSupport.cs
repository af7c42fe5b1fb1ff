using System.Runtime.Intrinsics.X86;

namespace MLExtensions.Core;

/// <summary>Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX-BF16), so bfloat16 training is fast.</summary>
public static class CpuPrecisionSupport
{
    private static readonly Lazy<string?> Feature = new(Detect);

    /// <summary>True when the CPU has AVX-512 BF16 or AMX-BF16 instructions.</summary>
    public static bool HasNativeBFloat16 => Feature.Value is not null;

    /// <summary>The feature that makes bfloat16 native ("avx512_bf16", "amx_bf16"), or null.</summary>
    public static string? NativeBFloat16Feature => Feature.Value;

    private static string? Detect()
    {
        // .NET exposes AVX-512 F/BW/VL but neither AVX-512 BF16 nor AMX, so the kernel's CPU flags decide; both
        // features need AVX-512 F, which rules out every other CPU cheaply. Off Linux there are no flags to read.
        if (!Avx512F.IsSupported || !OperatingSystem.IsLinux())
            return null;
        try
        {
            const string cpuInfo = "/proc/cpuinfo";
            if (!File.Exists(cpuInfo))
                return null;
            foreach (var line in File.ReadLines(cpuInfo))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal))
                    continue;
                var flags = line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return flags.Contains("amx_bf16") ? "amx_bf16" : flags.Contains("avx512_bf16") ? "avx512_bf16" : null;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }
}
