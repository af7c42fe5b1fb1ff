using System.Runtime.InteropServices;
using TorchSharp;

namespace MLExtensions.Core.Native;

/// <summary>
/// Makes sure TorchSharp's native library can be loaded before the first <c>torch</c> call, and turns a
/// failure into an exception that says which library and where to read more.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> requires <c>GLIBCXX_3.4.32</c> for a single symbol
/// (<c>std::ios_base_library_init</c>) that it references but never calls. libstdc++ before GCC 13
/// (Debian 12, Ubuntu 22.04) does not define that version, so the dynamic loader refuses the whole
/// library. When — and only when — the libstdc++ in this process lacks that version, the requirement is
/// marked weak (<c>VER_FLG_WEAK</c>) in the copy of <c>libLibTorchSharp.so</c> that this application
/// loads; the loader then accepts it. The fix runs here, at load time, so every application that
/// references MLExtensions gets it, whatever its build does.
/// </remarks>
public static class TorchNativeLoader
{
    /// <summary>Versions TorchSharp requires but does not need; each may be weakened where missing.</summary>
    internal static readonly string[] UnusedRequiredVersions = { "GLIBCXX_3.4.32" };

    private const string TorchSharpLibraryFile = "libLibTorchSharp.so";
    private const string Troubleshooting = "See the 'Troubleshooting' section of the MLExtensions README.";

    private static readonly object Gate = new();
    private static bool _loaded;

    /// <summary>A line per action taken, for the log and for tests.</summary>
    internal static IReadOnlyList<string> Actions => _actions;

    private static readonly List<string> _actions = new();

    /// <summary>Prepares and loads TorchSharp's native backend once per process.</summary>
    /// <exception cref="InvalidOperationException">The native backend cannot be loaded.</exception>
    public static void EnsureLoaded()
    {
        if (Volatile.Read(ref _loaded))
            return;
        lock (Gate)
        {
            if (_loaded)
                return;
            if (OperatingSystem.IsLinux())
                WeakenMissingLibStdCxxVersions();
            try
            {
                // Touching torch runs TorchSharp's static initialiser, which loads the native backend.
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
            {
                throw new InvalidOperationException(
                    $"TorchSharp's native library could not be loaded ({Describe(e)}). " +
                    $"Looked for {TorchSharpLibraryFile} in: {string.Join(", ", CandidateDirectories())}. {Troubleshooting}", e);
            }
            Volatile.Write(ref _loaded, true);
        }
    }

    private static string Describe(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e.Message;
    }

    private static void WeakenMissingLibStdCxxVersions()
    {
        string? libStdCxx = FindLoadedLibStdCxx();
        if (libStdCxx is null)
            return; // Nothing to compare against: leave the library untouched.

        var provided = ElfSymbolVersions.Read(libStdCxx).DefinedVersions();
        var missing = UnusedRequiredVersions.Where(v => !provided.Contains(v)).ToArray();
        if (missing.Length == 0)
            return;

        foreach (string directory in CandidateDirectories())
        {
            string path = System.IO.Path.Combine(directory, TorchSharpLibraryFile);
            if (File.Exists(path))
                WeakenIfRequired(path, missing);
        }
    }

    /// <summary>Marks each of <paramref name="versions"/> weak in the library at <paramref name="path"/>, if it requires it strongly.</summary>
    internal static bool WeakenIfRequired(string path, IEnumerable<string> versions)
    {
        var elf = ElfSymbolVersions.Read(path);
        bool changed = false;
        foreach (string version in versions)
            changed |= elf.MarkWeak(version);
        if (!changed)
            return false;
        try
        {
            elf.WriteAtomically(path);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new InvalidOperationException(
                $"{path} requires {string.Join(", ", versions)}, which this system's libstdc++ lacks, and the file " +
                $"cannot be patched in place ({e.Message}). Make the application's output folder writable once, " +
                $"or patch the file at build time. {Troubleshooting}", e);
        }
        lock (_actions)
            _actions.Add($"Marked {string.Join(", ", versions)} weak in {path}.");
        return true;
    }

    /// <summary>The libstdc++ that the .NET host already loaded (CoreCLR links against it).</summary>
    private static string? FindLoadedLibStdCxx()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0)
                    continue;
                string file = line[slash..];
                if (System.IO.Path.GetFileName(file).StartsWith("libstdc++.so", StringComparison.Ordinal))
                    return file;
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary>Folders from which the runtime resolves native libraries for this application.</summary>
    private static IEnumerable<string> CandidateDirectories()
    {
        var directories = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchPath)
            directories.AddRange(searchPath.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string baseDirectory = AppContext.BaseDirectory;
        directories.Add(baseDirectory);
        directories.Add(System.IO.Path.Combine(baseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"));
        directories.Add(System.IO.Path.Combine(baseDirectory, "runtimes", "linux-x64", "native"));
        return directories.Select(d => System.IO.Path.GetFullPath(d)).Distinct();
    }
}
