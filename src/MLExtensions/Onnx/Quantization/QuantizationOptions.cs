namespace MLExtensions.Onnx;

/// <summary>How <see cref="OnnxQuantizer"/> turns a float model into a smaller one.</summary>
public enum QuantizationMode
{
    /// <summary>
    /// Int8 weights; activations are quantized at run time from their actual range (per call), so no calibration
    /// data is needed. Output: <c>DynamicQuantizeLinear</c> + <c>MatMulInteger</c>/<c>ConvInteger</c> + float rescale.
    /// </summary>
    DynamicInt8,

    /// <summary>
    /// Int8 weights and activations with fixed activation ranges measured on calibration data, written as
    /// <c>QuantizeLinear</c>/<c>DequantizeLinear</c> pairs (QDQ format) that ONNX Runtime fuses into int8 kernels.
    /// </summary>
    StaticInt8,

    /// <summary>Weights and activations in IEEE half precision; graph inputs and outputs stay float32.</summary>
    Float16,
}

/// <summary>How activation ranges are derived from calibration data in <see cref="QuantizationMode.StaticInt8"/>.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen: every calibration value is representable, outliers widen the step.</summary>
    MinMax,

    /// <summary>
    /// Clips the tails: the range holds <see cref="QuantizationOptions.Percentile"/> percent of the calibration values
    /// (read from a histogram), so a few outliers do not coarsen the step for all other values.
    /// </summary>
    Percentile,
}

/// <summary>Options of <see cref="OnnxQuantizer.Quantize"/>. Checked by <see cref="Validate"/> before any work is done.</summary>
public sealed class QuantizationOptions
{
    /// <summary>The operator types quantized by default.</summary>
    public static IReadOnlyList<string> DefaultOperatorTypes { get; } = new[] { "MatMul", "Gemm", "Conv", "Gather" };

    /// <summary>What to produce. Default: <see cref="QuantizationMode.DynamicInt8"/>.</summary>
    public QuantizationMode Mode { get; set; } = QuantizationMode.DynamicInt8;

    /// <summary>How activation ranges are computed (static mode only). Default: <see cref="CalibrationMethod.MinMax"/>.</summary>
    public CalibrationMethod Calibration { get; set; } = CalibrationMethod.MinMax;

    /// <summary>
    /// For <see cref="CalibrationMethod.Percentile"/>: the percentage of calibration values the range must hold, in
    /// (50, 100]. Asymmetric ranges trim (100 − p)/2 percent from each tail; symmetric ranges use the p-th percentile
    /// of |x|. Default 99.99.
    /// </summary>
    public double Percentile { get; set; } = 99.99;

    /// <summary>
    /// Histogram resolution of the percentile calibrator: bins over each tensor's [min, max]. The range found is exact
    /// to one bin width. In [16, 1 048 576]; default 4096.
    /// </summary>
    public int HistogramBins { get; set; } = 4096;

    /// <summary>
    /// One scale per output channel (Conv: output filter; MatMul/Gemm: output column; Gather: embedding row) instead of
    /// one per weight tensor. Default true: channels with small weights keep their precision.
    /// </summary>
    public bool PerChannel { get; set; } = true;

    /// <summary>
    /// Symmetric weight ranges ([-m, m], zero point 0), which integer kernels handle fastest. Default true. Dynamic
    /// Conv needs one zero point for the whole weight, so asymmetric Conv weights are quantized per tensor.
    /// </summary>
    public bool SymmetricWeights { get; set; } = true;

    /// <summary>
    /// Symmetric activation ranges (int8, zero point 0) in static mode. Default false: asymmetric uint8, which wastes no
    /// codes on one-sided tensors such as ReLU outputs. Dynamic mode always uses ONNX's <c>DynamicQuantizeLinear</c> (asymmetric uint8).
    /// </summary>
    public bool SymmetricActivations { get; set; }

    /// <summary>
    /// Operator types to quantize; supported: <c>MatMul</c>, <c>Gemm</c>, <c>Conv</c>, <c>Gather</c> (embedding tables).
    /// Default: all four. Ignored by <see cref="QuantizationMode.Float16"/>, which converts the whole graph.
    /// </summary>
    public IList<string> OperatorTypes { get; set; } = DefaultOperatorTypes.ToList();

    /// <summary>
    /// Int8 modes, graphs built for ONNX Runtime (<c>ToOnnxRuntime</c>, <c>Model.Quantize</c> of text classifiers): the
    /// query/key/value MatMuls of each self-attention are packed into one int8 weight and run, with the attention itself,
    /// in ONNX Runtime's <c>QAttention</c> kernel. Needs <see cref="PerChannel"/> and <see cref="SymmetricWeights"/>, and in
    /// static mode asymmetric (uint8) activations, whose calibrated scale and zero point quantize the attention input; in
    /// dynamic mode the outputs equal the unfused form's. Otherwise, or when false, the three MatMuls are quantized one by
    /// one. Default true.
    /// </summary>
    public bool FuseAttention { get; set; } = true;

    /// <summary>Names of nodes to leave in float (reported as excluded).</summary>
    public ISet<string> ExcludedNodes { get; set; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>At most this many calibration samples are run (static mode); the rest are ignored. In [1, 1 000 000]; default 128.</summary>
    public int MaxCalibrationRows { get; set; } = 128;

    /// <summary>
    /// Runs ONNX Runtime's basic (standard-ONNX-only) graph optimizations first: constant folding and folding of
    /// BatchNormalization into the preceding Conv, so the folded weights are what gets quantized. Default true.
    /// </summary>
    public bool OptimizeBeforeQuantizing { get; set; } = true;

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is outside its documented range (the message names it).</exception>
    /// <exception cref="ArgumentNullException">A collection option is null.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode))
            throw new ArgumentOutOfRangeException(nameof(Mode), Mode, $"{nameof(Mode)} must be one of {string.Join(", ", Enum.GetNames<QuantizationMode>())}.");
        if (!Enum.IsDefined(Calibration))
            throw new ArgumentOutOfRangeException(nameof(Calibration), Calibration, $"{nameof(Calibration)} must be one of {string.Join(", ", Enum.GetNames<CalibrationMethod>())}.");
        if (!(Percentile > 50 && Percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, $"{nameof(Percentile)} must be in (50, 100], e.g. 99.99 (percent of calibration values the range keeps).");
        if (HistogramBins is < 16 or > 1 << 20)
            throw new ArgumentOutOfRangeException(nameof(HistogramBins), HistogramBins, $"{nameof(HistogramBins)} must be in [16, 1048576].");
        if (MaxCalibrationRows is < 1 or > 1_000_000)
            throw new ArgumentOutOfRangeException(nameof(MaxCalibrationRows), MaxCalibrationRows, $"{nameof(MaxCalibrationRows)} must be in [1, 1000000].");
        ArgumentNullException.ThrowIfNull(OperatorTypes, nameof(OperatorTypes));
        ArgumentNullException.ThrowIfNull(ExcludedNodes, nameof(ExcludedNodes));
        if (Mode != QuantizationMode.Float16)
        {
            if (OperatorTypes.Count == 0)
                throw new ArgumentOutOfRangeException(nameof(OperatorTypes), "[]", $"{nameof(OperatorTypes)} is empty; name at least one of {string.Join(", ", DefaultOperatorTypes)}.");
            foreach (string op in OperatorTypes)
            {
                if (!DefaultOperatorTypes.Contains(op, StringComparer.Ordinal))
                    throw new ArgumentOutOfRangeException(nameof(OperatorTypes), op, $"Operator type '{op}' cannot be quantized; supported: {string.Join(", ", DefaultOperatorTypes)} (case-sensitive, as in ONNX).");
            }
        }
    }
}
