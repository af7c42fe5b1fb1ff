using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Text;

/// <summary>The validated text input of a text model: one text column, or two for sentence pairs.</summary>
/// <param name="TextColumnName">The (first) text column.</param>
/// <param name="SecondTextColumnName">The second text column of a pair, or null.</param>
public sealed record TextColumns(string TextColumnName, string? SecondTextColumnName)
{
    /// <summary>Checks that the columns exist and are text.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or not text.</exception>
    public void Validate(DataViewSchema schema)
    {
        foreach (string? name in new[] { TextColumnName, SecondTextColumnName })
        {
            if (name is null)
                continue;
            var column = schema.GetColumnOrNull(name) ?? throw SchemaErrors.Missing("text", name, schema);
            if (column.Type is not TextDataViewType)
                throw SchemaErrors.WrongType("text", name, "String (text)", column.Type);
        }
    }

    /// <summary>The columns a cursor must activate.</summary>
    public IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema) =>
        SecondTextColumnName is null ? new[] { schema[TextColumnName] } : new[] { schema[TextColumnName], schema[SecondTextColumnName] };

    /// <summary>A function that tokenizes the current row of <paramref name="row"/>.</summary>
    public Func<TokenizedText> CreateTokenizer(DataViewRow row, WordPieceTokenizer tokenizer, int maxLength)
    {
        var first = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[TextColumnName]);
        var second = SecondTextColumnName is null ? null : row.GetGetter<ReadOnlyMemory<char>>(row.Schema[SecondTextColumnName]);
        ReadOnlyMemory<char> a = default, b = default;
        return () =>
        {
            first(ref a);
            if (second is null)
                return tokenizer.Encode(a.ToString(), null, maxLength);
            second(ref b);
            return tokenizer.Encode(a.ToString(), b.ToString(), maxLength);
        };
    }
}
