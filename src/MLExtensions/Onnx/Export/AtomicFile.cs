namespace MLExtensions.Onnx.Export;

/// <summary>
/// Writes a file so that readers see either the old file or the complete new one: the bytes go to a temporary
/// file in the same directory (same volume, so the final move is a rename) which then replaces the target.
/// On any failure the temporary file is deleted and nothing is left at the path.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write, string description = "the ONNX model")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"Cannot write {description} to '{full}': it is a directory.");
        string directory = Path.GetDirectoryName(full) ?? throw new IOException($"Cannot write {description} to '{full}': it has no parent directory.");
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Cannot write {description} to '{full}': the directory '{directory}' does not exist.");

        string temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new IOException($"Cannot write {description} to '{full}': {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original error is the one worth reporting.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
