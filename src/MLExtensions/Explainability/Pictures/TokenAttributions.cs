using System.Globalization;
using System.Net;
using System.Text;
using MLExtensions.Onnx.Export;

namespace MLExtensions.Explainability;

/// <summary>
/// Text explanations as a self-contained HTML page (shap's text plot): each token on a background in the red–transparent–blue
/// map scaled to the 99.9th percentile of |value|, the value on hover. Word pieces (##…) join the previous token.
/// </summary>
public static class TokenAttributions
{
    /// <summary>An HTML page (no scripts, no external files) showing one or more explained texts.</summary>
    /// <param name="texts">Per text: the <c>Tokens</c>, the <c>Attributions</c> and an optional caption (e.g. the prediction).</param>
    /// <param name="title">The page title.</param>
    public static string ToHtml(IEnumerable<(IReadOnlyList<string> Tokens, IReadOnlyList<float> Attributions, string? Caption)> texts, string title = "Token attributions")
    {
        var list = texts.ToList();
        foreach (var (tokens, attributions, _) in list)
        {
            if (tokens.Count != attributions.Count)
                throw new ArgumentException($"Every text needs one attribution per token; found {tokens.Count} tokens and {attributions.Count} attributions.", nameof(texts));
        }
        double scale = AttributionColors.Scale(list.SelectMany(t => t.Attributions));
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").Append(WebUtility.HtmlEncode(title)).Append("</title>\n<style>")
            .Append("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:2.2}")
            .Append(".t{padding:0.2em 0.1em;border-radius:0.2em}.c{color:#555;font-size:0.9em;margin-top:1.5em}")
            .Append("</style></head><body>\n<h1>").Append(WebUtility.HtmlEncode(title)).Append("</h1>\n")
            .Append("<p class=\"c\">red raises the explained output, blue lowers it; hover a token for its value</p>\n");
        foreach (var (tokens, attributions, caption) in list)
        {
            if (caption is not null)
                html.Append("<div class=\"c\">").Append(WebUtility.HtmlEncode(caption)).Append("</div>\n");
            html.Append("<div>");
            for (int i = 0; i < tokens.Count; i++)
            {
                string token = tokens[i];
                bool piece = token.StartsWith("##", StringComparison.Ordinal);
                if (i > 0 && !piece)
                    html.Append(' ');
                var (color, alpha) = AttributionColors.Of(attributions[i], scale);
                html.Append("<span class=\"t\" title=\"").Append(attributions[i].ToString("G4", CultureInfo.InvariantCulture))
                    .Append(FormattableString.Invariant($"\" style=\"background:rgba({color.R},{color.G},{color.B},{alpha:0.###})\">"))
                    .Append(WebUtility.HtmlEncode(piece ? token[2..] : token)).Append("</span>");
            }
            html.Append("</div>\n");
        }
        html.Append("</body></html>\n");
        return html.ToString();
    }

    /// <summary>Writes <see cref="ToHtml"/> to <paramref name="path"/> (UTF-8, atomically).</summary>
    public static void SaveHtml(string path, IEnumerable<(IReadOnlyList<string> Tokens, IReadOnlyList<float> Attributions, string? Caption)> texts, string title = "Token attributions")
    {
        var bytes = Encoding.UTF8.GetBytes(ToHtml(texts, title));
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }
}
