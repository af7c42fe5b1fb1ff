using System.Buffers.Binary;
using System.Text;

namespace MLExtensions.Core.Native;

/// <summary>
/// Reads and edits the GNU symbol-versioning sections of a 64-bit little-endian ELF shared library:
/// the versions a library defines (<c>.gnu.version_d</c>) and the versions it requires from its
/// dependencies (<c>.gnu.version_r</c>).
/// </summary>
/// <remarks>
/// Only what the TorchSharp loader fix needs is implemented. The format is the System V gABI with the
/// GNU extensions: Elf64_Verdef/Verdaux and Elf64_Verneed/Vernaux records chained by byte offsets,
/// names stored as offsets into the string table that the section's <c>sh_link</c> points to.
/// </remarks>
internal sealed class ElfSymbolVersions
{
    private const uint SectionTypeVerdef = 0x6ffffffd;
    private const uint SectionTypeVerneed = 0x6ffffffe;

    /// <summary><c>VER_FLG_WEAK</c>: a missing version is then only a warning for the dynamic loader.</summary>
    internal const ushort WeakFlag = 0x2;

    private readonly byte[] _image;

    private ElfSymbolVersions(byte[] image, string path)
    {
        _image = image;
        Path = path;
        if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
            throw new InvalidDataException($"'{path}' is not an ELF file.");
        if (image[4] != 2 || image[5] != 1)
            throw new InvalidDataException($"'{path}' is not a 64-bit little-endian ELF file.");
    }

    /// <summary>The file the image was read from.</summary>
    public string Path { get; }

    /// <summary>Reads the whole file into memory.</summary>
    public static ElfSymbolVersions Read(string path) => new(File.ReadAllBytes(path), path);

    /// <summary>The version names the library defines, e.g. <c>GLIBCXX_3.4.30</c> for libstdc++.</summary>
    public IReadOnlyCollection<string> DefinedVersions()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var section in Sections(SectionTypeVerdef))
        {
            long entry = section.Offset;
            for (int i = 0; i < section.Info; i++)
            {
                ushort auxCount = U16(entry + 6);
                uint auxOffset = U32(entry + 12);
                uint next = U32(entry + 16);
                long aux = entry + auxOffset;
                // The first Verdaux names the version itself; further ones name its parents.
                if (auxCount > 0)
                    names.Add(ReadString(section.StringTableOffset, U32(aux)));
                if (next == 0)
                    break;
                entry += next;
            }
        }
        return names;
    }

    /// <summary>The versions the library requires, with the file that must provide each and whether the requirement is weak.</summary>
    public IReadOnlyList<RequiredVersion> RequiredVersions()
    {
        var result = new List<RequiredVersion>();
        foreach (var section in Sections(SectionTypeVerneed))
        {
            long entry = section.Offset;
            for (int i = 0; i < section.Info; i++)
            {
                ushort auxCount = U16(entry + 2);
                string file = ReadString(section.StringTableOffset, U32(entry + 4));
                uint auxOffset = U32(entry + 8);
                uint next = U32(entry + 12);
                long aux = entry + auxOffset;
                for (int j = 0; j < auxCount; j++)
                {
                    ushort flags = U16(aux + 4);
                    string name = ReadString(section.StringTableOffset, U32(aux + 8));
                    result.Add(new RequiredVersion(file, name, (flags & WeakFlag) != 0, aux + 4));
                    uint auxNext = U32(aux + 12);
                    if (auxNext == 0)
                        break;
                    aux += auxNext;
                }
                if (next == 0)
                    break;
                entry += next;
            }
        }
        return result;
    }

    /// <summary>Marks the named required version weak in the in-memory image. Returns false when it is absent or already weak.</summary>
    public bool MarkWeak(string versionName)
    {
        bool changed = false;
        foreach (var required in RequiredVersions())
        {
            if (required.Name != versionName || required.IsWeak)
                continue;
            ushort flags = U16(required.FlagsOffset);
            BinaryPrimitives.WriteUInt16LittleEndian(_image.AsSpan((int)required.FlagsOffset), (ushort)(flags | WeakFlag));
            changed = true;
        }
        return changed;
    }

    /// <summary>
    /// Writes the image next to <paramref name="destination"/> and renames it into place, so a reader
    /// (or a crash) never sees a half-written library.
    /// </summary>
    public void WriteAtomically(string destination)
    {
        string temp = destination + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temp, _image);
        try
        {
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(temp, File.GetUnixFileMode(destination));
            File.Move(temp, destination, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private IEnumerable<SectionInfo> Sections(uint type)
    {
        long sectionHeaderOffset = (long)U64(0x28);
        ushort entrySize = U16(0x3a);
        ushort count = U16(0x3c);
        var found = new List<SectionInfo>();
        for (int i = 0; i < count; i++)
        {
            long header = sectionHeaderOffset + (long)i * entrySize;
            if (U32(header + 4) != type)
                continue;
            long offset = (long)U64(header + 0x18);
            uint link = U32(header + 0x28);
            uint info = U32(header + 0x2c);
            long linkHeader = sectionHeaderOffset + (long)link * entrySize;
            long stringTable = (long)U64(linkHeader + 0x18);
            found.Add(new SectionInfo(offset, info, stringTable));
        }
        return found;
    }

    private string ReadString(long tableOffset, uint nameOffset)
    {
        int start = checked((int)(tableOffset + nameOffset));
        int end = Array.IndexOf(_image, (byte)0, start);
        if (end < 0)
            throw new InvalidDataException($"'{Path}': unterminated string in the ELF string table.");
        return Encoding.ASCII.GetString(_image, start, end - start);
    }

    private ushort U16(long offset) => BinaryPrimitives.ReadUInt16LittleEndian(Slice(offset, 2));

    private uint U32(long offset) => BinaryPrimitives.ReadUInt32LittleEndian(Slice(offset, 4));

    private ulong U64(long offset) => BinaryPrimitives.ReadUInt64LittleEndian(Slice(offset, 8));

    private ReadOnlySpan<byte> Slice(long offset, int length)
    {
        if (offset < 0 || offset + length > _image.Length)
            throw new InvalidDataException($"'{Path}' is truncated or corrupted (offset {offset} is outside the file).");
        return _image.AsSpan((int)offset, length);
    }

    private readonly record struct SectionInfo(long Offset, uint Info, long StringTableOffset);

    /// <summary>One <c>Vernaux</c> entry: version <paramref name="Name"/> required from <paramref name="File"/>.</summary>
    internal readonly record struct RequiredVersion(string File, string Name, bool IsWeak, long FlagsOffset);
}
