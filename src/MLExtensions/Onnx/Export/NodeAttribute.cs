namespace MLExtensions.Onnx.Export;

/// <summary>
/// One attribute of an ONNX node, independent of the graph being written (OnnxSharp protobuf or ML.NET's
/// <c>OnnxContext</c>), so the module exporters can describe nodes once for both routes.
/// </summary>
internal sealed record NodeAttribute(string Name, long? Int = null, float? Float = null, long[]? Ints = null, string? Text = null)
{
    public static NodeAttribute Of(string name, long value) => new(name, Int: value);

    public static NodeAttribute Of(string name, float value) => new(name, Float: value);

    /// <summary>An INTS attribute. A separate name from <see cref="Of(string, long)"/> so a one-element list can never become an INT.</summary>
    public static NodeAttribute IntList(string name, params long[] values) => new(name, Ints: values);

    public static NodeAttribute Of(string name, string value) => new(name, Text: value);
}
