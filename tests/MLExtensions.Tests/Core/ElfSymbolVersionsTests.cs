using MLExtensions.Core.Native;
using MLExtensions.Tests.Support;
using Xunit;

namespace MLExtensions.Tests.Core;

/// <summary>The GLIBCXX fix edits exactly one flag in the copy of TorchSharp's native library.</summary>
public class ElfSymbolVersionsTests
{
    private static string Original => Path.Combine(AppContext.BaseDirectory, "TestData", "Native", "libLibTorchSharp.original.so");

    [Fact]
    public void TheShippedLibraryRequiresGlibcxx3432Strongly()
    {
        var required = ElfSymbolVersions.Read(Original).RequiredVersions();
        var entry = Assert.Single(required, r => r.Name == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", entry.File);
        Assert.False(entry.IsWeak);
        Assert.Contains(required, r => r.Name == "GLIBC_2.2.5" && r.File == "libc.so.6");
    }

    [Fact]
    public void WeakeningChangesOnlyThatFlag()
    {
        using var temp = new TempDirectory();
        string copy = temp.File("libLibTorchSharp.so");
        File.Copy(Original, copy);

        Assert.True(TorchNativeLoader.WeakenIfRequired(copy, new[] { "GLIBCXX_3.4.32" }));

        var before = File.ReadAllBytes(Original);
        var after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        var only = Assert.Single(changed);
        Assert.Equal(before[only] | ElfSymbolVersions.WeakFlag, after[only]);
        var entries = ElfSymbolVersions.Read(copy).RequiredVersions();
        Assert.True(Assert.Single(entries, r => r.Name == "GLIBCXX_3.4.32").IsWeak);
        Assert.All(entries.Where(r => r.Name != "GLIBCXX_3.4.32"), r => Assert.False(r.IsWeak));

        // A second run finds nothing to do and leaves the file alone.
        Assert.False(TorchNativeLoader.WeakenIfRequired(copy, new[] { "GLIBCXX_3.4.32" }));
    }

    [Fact]
    public void ReadsTheVersionsLibStdCxxDefines()
    {
        string libstdcxx = File.ReadLines("/proc/self/maps").Select(l => l.IndexOf('/') is int i and >= 0 ? l[i..] : "")
            .First(p => Path.GetFileName(p).StartsWith("libstdc++.so", StringComparison.Ordinal));
        var defined = ElfSymbolVersions.Read(libstdcxx).DefinedVersions();
        Assert.Contains("GLIBCXX_3.4", defined);
        Assert.Contains("GLIBCXX_3.4.21", defined);
    }

    [Fact]
    public void RejectsFilesThatAreNotElf()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("x.so"), "not a library");
        var e = Assert.Throws<InvalidDataException>(() => ElfSymbolVersions.Read(temp.File("x.so")));
        Assert.Equal($"'{temp.File("x.so")}' is not an ELF file.", e.Message);
    }
}
