using System.Buffers.Binary;
using System.IO.Compression;

namespace MLExtensions.Vision;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: unsigned-byte image tensors
/// (magic 2051) and label vectors (magic 2049).
/// </summary>
public static class IdxFile
{
    /// <summary>Images as one byte array of count × rows × columns pixels, row-major per image.</summary>
    public sealed record Images(int Count, int Rows, int Columns, byte[] Pixels)
    {
        /// <summary>Pixels of image <paramref name="index"/>.</summary>
        public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * Rows * Columns, Rows * Columns);
    }

    /// <summary>Reads an image file (magic 2051).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an IDX image file or is truncated.</exception>
    public static Images ReadImages(string path, int? maxCount = null)
    {
        using var stream = Open(path);
        var header = ReadExactly(stream, 16, path);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != 2051)
            throw new InvalidDataException($"'{path}' is not an IDX image file (magic {magic}, expected 2051).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8));
        int columns = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(12));
        if (count < 0 || rows <= 0 || columns <= 0)
            throw new InvalidDataException($"'{path}' has an invalid IDX header ({count} × {rows} × {columns}).");
        int take = Math.Min(count, maxCount ?? count);
        return new Images(take, rows, columns, ReadExactly(stream, checked(take * rows * columns), path));
    }

    /// <summary>Reads a label file (magic 2049).</summary>
    public static byte[] ReadLabels(string path, int? maxCount = null)
    {
        using var stream = Open(path);
        var header = ReadExactly(stream, 8, path);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != 2049)
            throw new InvalidDataException($"'{path}' is not an IDX label file (magic {magic}, expected 2049).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4));
        return ReadExactly(stream, Math.Min(count, maxCount ?? count), path);
    }

    private static Stream Open(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file '{path}' was not found.", path);
        Stream file = File.OpenRead(path);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    private static byte[] ReadExactly(Stream stream, int length, string path)
    {
        var buffer = new byte[length];
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"'{path}' is truncated: expected {length} more bytes.", e);
        }
        return buffer;
    }
}
