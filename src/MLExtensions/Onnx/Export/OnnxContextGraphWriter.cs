using Microsoft.ML.Model.OnnxConverter;

namespace MLExtensions.Onnx.Export;

/// <summary>
/// Emits into ML.NET's <see cref="OnnxContext"/>, the graph <c>mlContext.Model.ConvertToOnnx</c> builds for a whole
/// pipeline. Intermediate values are declared without a type (ONNX Runtime infers them); only the columns the
/// pipeline sees (Score, PredictedLabel…) are typed, by the caller.
/// </summary>
internal sealed class OnnxContextGraphWriter : IOnnxGraphWriter
{
    // Intermediate names also enter the context's column map; the prefix keeps them from ever shadowing a real column.
    private const string Prefix = "MLExt.";
    private readonly OnnxContext _ctx;

    public OnnxContextGraphWriter(OnnxContext ctx, int opsetVersion)
    {
        _ctx = ctx;
        OpsetVersion = opsetVersion;
    }

    public int OpsetVersion { get; }

    /// <summary>
    /// The opset the context targets. <see cref="OnnxContext"/> exposes only a check that throws below a minimum, so
    /// the version is found by asking from the newest opset this exporter uses down to the oldest it supports.
    /// </summary>
    public static int DetectOpset(OnnxContext ctx, int oldest, int newest)
    {
        for (int version = newest; version > oldest; version--)
        {
            try
            {
                ctx.CheckOpSetVersion(version, "MLExtensions");
                return version;
            }
            catch (ArgumentOutOfRangeException)
            {
                // Below the context's opset: try the next older one.
            }
        }
        ctx.CheckOpSetVersion(oldest, "MLExtensions");
        return oldest;
    }

    public string AddInitializer(string nameHint, float[] values, long[] dims) =>
        // The context's tensor overload multiplies the dimensions, which fails for a scalar (no dimensions).
        dims.Length == 0 ? _ctx.AddInitializer(values[0], Prefix + nameHint) : _ctx.AddInitializer(values, dims, Prefix + nameHint);

    public string AddInitializer(string nameHint, long[] values, long[] dims) =>
        dims.Length == 0 ? _ctx.AddInitializer(values[0], Prefix + nameHint) : _ctx.AddInitializer(values, dims, Prefix + nameHint);

    /// <summary>Always false: a converted pipeline is a portable ONNX file.</summary>
    public bool TargetsOnnxRuntime => false;

    public string AddOnnxRuntimeNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes) =>
        throw new InvalidOperationException($"ConvertToOnnx writes portable ONNX; ONNX Runtime's contrib operator {opType} cannot be used there.");

    public string AddNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes)
    {
        string output = _ctx.AddIntermediateVariable(null!, Prefix + outputHint, skip: true);
        AddNodeTo(opType, inputs, output, attributes);
        return output;
    }

    /// <summary>Adds a node writing to <paramref name="output"/>, a variable the caller declared (e.g. a pipeline column).</summary>
    public void AddNodeTo(string opType, IReadOnlyList<string> inputs, string output, params NodeAttribute[] attributes)
    {
        var node = _ctx.CreateNode(opType, inputs, new[] { output }, _ctx.GetNodeName(Prefix + opType), "");
        foreach (var a in attributes)
        {
            if (a.Int is long i)
                node.AddAttribute(a.Name, i);
            else if (a.Float is float f)
                node.AddAttribute(a.Name, (double)f);
            else if (a.Ints is long[] ints)
                node.AddAttribute(a.Name, ints);
            else if (a.Text is string s)
                node.AddAttribute(a.Name, s);
            else
                throw new ArgumentException($"Attribute '{a.Name}' has no value.", nameof(attributes));
        }
    }
}
