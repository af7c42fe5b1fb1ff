using MLExtensions.Onnx;
using Xunit;

namespace MLExtensions.Tests.Onnx.Quantization;

/// <summary>Min-max against percentile calibration on a tensor with two outliers; every expected value is derived by hand in the comments.</summary>
public class RangeCalibratorTests
{
    // 9,998 values evenly spaced over [−0.95, 0.95] plus the outliers −60 and 100: 10,000 values.
    private static float[] ValuesWithOutliers()
    {
        var values = Enumerable.Range(0, 9998).Select(i => (float)(-0.95 + 1.9 * i / 9997)).ToList();
        values.Add(-60f);
        values.Add(100f);
        return values.ToArray();
    }

    private static (float Min, float Max) Calibrate(CalibrationMethod method, bool symmetric, int bins, params float[][] batches)
    {
        var calibrator = new RangeCalibrator(method, 99.9, bins, symmetric);
        foreach (var b in batches)
            calibrator.ObserveMinMax(b);
        if (calibrator.NeedsSecondPass)
            foreach (var b in batches)
                calibrator.ObserveHistogram(b);
        return calibrator.Range();
    }

    [Fact]
    public void MinMaxKeepsTheOutliers()
    {
        var values = ValuesWithOutliers();
        // Split into two batches: the running min and max must survive across calls.
        Assert.Equal((-60f, 100f), Calibrate(CalibrationMethod.MinMax, false, 1600, values[..5000], values[5000..]));
        // uint8 parameters for that range: s = 160/255 ≈ 0.627, so all 9,998 ordinary values fall within ±2 codes of zero.
        var p = QuantizationParameters.FromRange(-60, 100, 0, 255, symmetric: false);
        Assert.Equal(160f / 255, p.Scale, 6);
        Assert.Equal(96, p.ZeroPoint); // round(60 / 0.6275) = round(95.6)
    }

    [Fact]
    public void PercentileDropsTheOutliersAsymmetric()
    {
        // 99.9 % kept → at most 10,000 × 0.1 % / 2 = 5 values may be cut from each tail; each tail holds one outlier.
        // 1,600 bins over [−60, 100] are 0.1 wide: −0.95 lies in bin floor(59.05 / 0.1) = 590, whose lower edge is −1.0;
        // 0.95 lies in bin 609, whose upper edge is −60 + 610 × 0.1 = 1.0.
        var (min, max) = Calibrate(CalibrationMethod.Percentile, false, 1600, ValuesWithOutliers());
        Assert.Equal(-1.0f, min, 4);
        Assert.Equal(1.0f, max, 4);
        // With the outliers gone the uint8 step is 2/255 instead of 160/255: 80× finer for the ordinary values.
        var p = QuantizationParameters.FromRange(min, max, 0, 255, symmetric: false);
        Assert.Equal(2f / 255, p.Scale, 5);
        // The zero point is 1.0 / (2/255) = 127.5, a tie; which side float32 rounding of the bin edges lands on is not pinned here.
        Assert.InRange(p.ZeroPoint, 127, 128);
    }

    [Fact]
    public void PercentileDropsTheOutliersSymmetric()
    {
        // |x| histogram over [0, 100] with 1,600 bins of 0.0625; at most 10 values (0.1 %) may lie above the threshold.
        // The two outliers are dropped; 0.95 lies in bin floor(15.2) = 15, whose upper edge is 16 × 0.0625 = 1.0.
        var (min, max) = Calibrate(CalibrationMethod.Percentile, true, 1600, ValuesWithOutliers());
        Assert.Equal(-1.0f, min, 4);
        Assert.Equal(1.0f, max, 4);
        // Min-max symmetric would have used ±100.
        Assert.Equal((-60f, 100f), Calibrate(CalibrationMethod.MinMax, true, 1600, ValuesWithOutliers()));
    }

    [Fact]
    public void PercentileOnValuesWithoutOutliersKeepsTheFullRange()
    {
        // 1,000 evenly spaced values in [0, 1]: at most 0.05 % = 0.5 value may be cut per side, i.e. none.
        var values = Enumerable.Range(0, 1000).Select(i => i / 999f).ToArray();
        var (min, max) = Calibrate(CalibrationMethod.Percentile, false, 100, values);
        Assert.Equal(0f, min, 5);
        Assert.Equal(1f, max, 5);
    }
}
