namespace MLExtensions.Onnx.Export;

/// <summary>
/// The few graph-building operations the module exporters need. Two implementations: <see cref="ProtoGraphWriter"/>
/// builds a stand-alone ONNX graph (<c>ExportToOnnx</c>); an OnnxContext writer emits into ML.NET's
/// <c>OnnxContext</c> (<c>ConvertToOnnx</c>). Exporters only ever see this interface, so each network is described once.
/// </summary>
internal interface IOnnxGraphWriter
{
    /// <summary>The ai.onnx opset the graph targets; exporters pick decompositions from it.</summary>
    int OpsetVersion { get; }

    /// <summary>Adds a float constant tensor and returns its (unique) name.</summary>
    string AddInitializer(string nameHint, float[] values, long[] dims);

    /// <summary>Adds an int64 constant tensor and returns its (unique) name.</summary>
    string AddInitializer(string nameHint, long[] values, long[] dims);

    /// <summary>Adds a node with one output and returns the output's (unique) name.</summary>
    string AddNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes);

    /// <summary>
    /// True when the graph will only ever run on ONNX Runtime (<c>ToOnnxRuntime</c>, <c>Quantize</c>), so exporters may use
    /// its fused contrib operators (domain <c>com.microsoft</c>) instead of portable decompositions. False for files
    /// other runtimes may read (<c>ExportToOnnx</c>, <c>ConvertToOnnx</c>).
    /// </summary>
    bool TargetsOnnxRuntime { get; }

    /// <summary>Adds a node of ONNX Runtime's contrib domain (<c>com.microsoft</c>); only allowed when <see cref="TargetsOnnxRuntime"/>.</summary>
    /// <exception cref="InvalidOperationException">The graph is meant to stay portable.</exception>
    string AddOnnxRuntimeNode(string opType, IReadOnlyList<string> inputs, string outputHint, params NodeAttribute[] attributes);
}
