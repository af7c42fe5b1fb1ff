namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>
/// A plain-text table with a header, a rule under it and optional rules between row groups. The first
/// column is left-aligned, the others right-aligned (they hold numbers). Output stays readable in a log
/// and pastes into an issue as is.
/// </summary>
internal sealed class TextTable
{
    private readonly string[] _headers;
    private readonly List<string[]?> _rows = new(); // null = a separator rule

    /// <summary>Creates a table with the given column headers.</summary>
    public TextTable(params string[] headers) => _headers = headers;

    /// <summary>Adds a row; it must have one cell per column.</summary>
    public void AddRow(params string[] cells)
    {
        if (cells.Length != _headers.Length)
            throw new ArgumentException($"A row needs {_headers.Length} cells; got {cells.Length}.", nameof(cells));
        _rows.Add(cells);
    }

    /// <summary>Adds a horizontal rule before the next row.</summary>
    public void AddSeparator() => _rows.Add(null);

    /// <summary>Writes the table, each line prefixed with <paramref name="indent"/>.</summary>
    public void Write(TextWriter output, string indent = "  ")
    {
        var widths = _headers.Select((h, i) => _rows.Where(r => r is not null).Select(r => r![i].Length).Append(h.Length).Max()).ToArray();
        string rule = indent + string.Join("-+-", widths.Select(w => new string('-', w)));
        output.WriteLine(indent + Format(_headers, widths));
        output.WriteLine(rule);
        foreach (var row in _rows)
            output.WriteLine(row is null ? rule : indent + Format(row, widths));
    }

    private static string Format(string[] cells, int[] widths) =>
        string.Join(" | ", cells.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd();
}
