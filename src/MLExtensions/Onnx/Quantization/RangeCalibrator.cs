namespace MLExtensions.Onnx;

/// <summary>
/// The range of one activation tensor over the calibration set. Min-max needs one pass over the data. Percentile needs
/// two: the first finds [min, max], the second fills a fixed-size histogram over it, so memory does not grow with the
/// calibration set (ONNX Runtime's Python calibrators keep every value, which is what exhausts memory on large models).
/// </summary>
internal sealed class RangeCalibrator
{
    private readonly CalibrationMethod _method;
    private readonly double _percentile;
    private readonly bool _symmetric;
    private readonly long[] _histogram;
    private long _count;

    public RangeCalibrator(CalibrationMethod method, double percentile, int bins, bool symmetric)
    {
        _method = method;
        _percentile = percentile;
        _symmetric = symmetric;
        _histogram = method == CalibrationMethod.Percentile ? new long[bins] : Array.Empty<long>();
    }

    /// <summary>Smallest value seen in the first pass.</summary>
    public float Min { get; private set; } = float.PositiveInfinity;

    /// <summary>Largest value seen in the first pass.</summary>
    public float Max { get; private set; } = float.NegativeInfinity;

    /// <summary>Whether <see cref="ObserveHistogram"/> must be called with the same data after the first pass.</summary>
    public bool NeedsSecondPass => _method == CalibrationMethod.Percentile;

    /// <summary>First pass: extends [min, max] (NaN and infinities are ignored).</summary>
    public void ObserveMinMax(ReadOnlySpan<float> values)
    {
        float min = Min, max = Max;
        foreach (float v in values)
        {
            if (!float.IsFinite(v))
                continue;
            if (v < min)
                min = v;
            if (v > max)
                max = v;
        }
        Min = min;
        Max = max;
    }

    /// <summary>Second pass (percentile only): counts values into bins over [min, max] (over [0, max |x|] when symmetric).</summary>
    public void ObserveHistogram(ReadOnlySpan<float> values)
    {
        if (!HasData)
            return;
        (double low, double high) = HistogramSpan;
        double width = (high - low) / _histogram.Length;
        int last = _histogram.Length - 1;
        foreach (float v in values)
        {
            if (!float.IsFinite(v))
                continue;
            double x = _symmetric ? Math.Abs(v) : v;
            int bin = width > 0 ? (int)Math.Clamp((x - low) / width, 0, last) : 0;
            _histogram[bin]++;
            _count++;
        }
    }

    private bool HasData => float.IsFinite(Min) && float.IsFinite(Max);

    private (double Low, double High) HistogramSpan => _symmetric ? (0, Math.Max(Math.Abs(Min), Math.Abs(Max))) : (Min, Max);

    /// <summary>
    /// The calibrated range. Min-max: [min, max]. Percentile, asymmetric: the narrowest bin-aligned [lo, hi] with at most
    /// (100 − p)/2 percent of the values below lo and at most as many above hi. Symmetric: [−t, t] with at most (100 − p)
    /// percent of |x| above t. Exact to one bin width.
    /// </summary>
    public (float Min, float Max) Range()
    {
        if (!HasData)
            return (0, 0);
        if (_method == CalibrationMethod.MinMax || _count == 0)
            return (Min, Max);
        (double low, double high) = HistogramSpan;
        double width = (high - low) / _histogram.Length;
        if (_symmetric)
        {
            double tail = _count * (100 - _percentile) / 100;
            float t = (float)(low + (UpperBin(tail) + 1) * width);
            return (-t, t);
        }
        double sideTail = _count * (100 - _percentile) / 200;
        long below = 0;
        int lowBin = 0;
        for (; lowBin < _histogram.Length; lowBin++)
        {
            if (below + _histogram[lowBin] > sideTail)
                break;
            below += _histogram[lowBin];
        }
        return ((float)(low + lowBin * width), (float)(low + (UpperBin(sideTail) + 1) * width));
    }

    /// <summary>The highest bin such that the bins above it hold at most <paramref name="tail"/> values.</summary>
    private int UpperBin(double tail)
    {
        long above = 0;
        int bin = _histogram.Length - 1;
        for (; bin > 0; bin--)
        {
            if (above + _histogram[bin] > tail)
                break;
            above += _histogram[bin];
        }
        return bin;
    }
}
