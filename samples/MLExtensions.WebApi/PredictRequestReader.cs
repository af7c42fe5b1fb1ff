using System.Text;
using System.Text.Json;

namespace MLExtensions.WebApi;

/// <summary>
/// Reads and checks the body of <c>POST /predict</c>: a JSON object with exactly one member, <c>text</c>, a non-empty
/// string no longer than <see cref="ServingOptions.MaxTextLength"/>. Every rejection names the field it is about, so the
/// client gets a problem-details response it can act on.
/// </summary>
internal static class PredictRequestReader
{
    public const string TextField = "text";
    public const string BodyField = "body";

    /// <summary>The outcome: the text, or the status code and the per-field errors to report.</summary>
    internal readonly record struct Result(string? Text, int StatusCode, Dictionary<string, string[]>? Errors)
    {
        public bool IsValid => Errors is null;

        public static Result Valid(string text) => new(text, StatusCodes.Status200OK, null);

        public static Result Invalid(string field, string message, int status = StatusCodes.Status400BadRequest) =>
            new(null, status, new Dictionary<string, string[]> { [field] = new[] { message } });
    }

    public static async Task<Result> ReadAsync(HttpRequest request, ServingOptions options, CancellationToken cancellation)
    {
        if (request.ContentType is { } contentType && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            return Result.Invalid(BodyField, $"expected Content-Type application/json, found '{contentType}'.", StatusCodes.Status415UnsupportedMediaType);
        if (request.ContentLength > options.MaxRequestBodyBytes)
            return TooLarge(options);

        // Read at most one byte more than allowed: a body without Content-Length (chunked) is limited the same way.
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        try
        {
            while ((read = await request.Body.ReadAsync(chunk, cancellation)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > options.MaxRequestBodyBytes)
                    return TooLarge(options);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge(options);
        }

        // GetBuffer + length: no copy of the body (it may be up to MaxRequestBodyBytes) for the check or the parse.
        var body = new ReadOnlyMemory<byte>(buffer.GetBuffer(), 0, (int)buffer.Length);
        if (body.IsEmpty || !body.Span.ContainsAnyExcept(" \t\r\n"u8))
            return Result.Invalid(BodyField, "the request body is empty; send a JSON object such as {\"text\": \"Great coffee!\"}.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            return Result.Invalid(BodyField, $"the body is not valid JSON ({e.Message}).");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return Result.Invalid(BodyField, $"expected a JSON object such as {{\"text\": \"...\"}}, found {Describe(root.ValueKind)}.");
            string? text = null;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name != TextField)
                    return Result.Invalid(property.Name, $"unknown field '{property.Name}'; the only field is '{TextField}'.");
                if (property.Value.ValueKind != JsonValueKind.String)
                    return Result.Invalid(TextField, $"expected a JSON string, found {Describe(property.Value.ValueKind)}.");
                text = property.Value.GetString()!;
            }
            if (text is null)
                return Result.Invalid(TextField, "the field is required.");
            if (string.IsNullOrWhiteSpace(text))
                return Result.Invalid(TextField, "the text is empty.");
            if (text.Length > options.MaxTextLength)
                return Result.Invalid(TextField, $"the text has {text.Length} characters; at most {options.MaxTextLength} are accepted.");
            return Result.Valid(text);
        }
    }

    private static Result TooLarge(ServingOptions options) =>
        Result.Invalid(BodyField, $"the request body exceeds {options.MaxRequestBodyBytes} bytes.", StatusCodes.Status413PayloadTooLarge);

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
