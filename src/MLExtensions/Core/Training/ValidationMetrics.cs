using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Fraction of rows whose arg-max output equals the class-index target.</summary>
public sealed class MulticlassAccuracyMetric : IValidationMetric
{
    private long _correct;
    private long _total;

    /// <inheritdoc />
    public string Name => "Accuracy";

    /// <inheritdoc />
    public bool HigherIsBetter => true;

    /// <inheritdoc />
    public void Update(Tensor output, Batch batch)
    {
        using var predicted = output.argmax(1L);
        using var equal = predicted.eq(batch.Targets[0]);
        using var sum = equal.sum();
        _correct += sum.item<long>();
        _total += batch.Count;
    }

    /// <inheritdoc />
    public double Compute() => _total == 0 ? 0 : (double)_correct / _total;

    /// <inheritdoc />
    public double[] GetSums() => new double[] { _correct, _total };

    /// <inheritdoc />
    public void SetSums(ReadOnlySpan<double> sums) => (_correct, _total) = ((long)sums[0], (long)sums[1]);
}

/// <summary>Fraction of rows where (logit &gt; 0) equals the 0/1 target.</summary>
public sealed class BinaryAccuracyMetric : IValidationMetric
{
    private long _correct;
    private long _total;

    /// <inheritdoc />
    public string Name => "Accuracy";

    /// <inheritdoc />
    public bool HigherIsBetter => true;

    /// <inheritdoc />
    public void Update(Tensor output, Batch batch)
    {
        using var predicted = output.reshape(-1).gt(0);
        using var truth = batch.Targets[0].gt(0.5);
        using var equal = predicted.eq(truth);
        using var sum = equal.sum();
        _correct += sum.item<long>();
        _total += batch.Count;
    }

    /// <inheritdoc />
    public double Compute() => _total == 0 ? 0 : (double)_correct / _total;

    /// <inheritdoc />
    public double[] GetSums() => new double[] { _correct, _total };

    /// <inheritdoc />
    public void SetSums(ReadOnlySpan<double> sums) => (_correct, _total) = ((long)sums[0], (long)sums[1]);
}

/// <summary>Root mean squared error between the output and the target.</summary>
public sealed class RootMeanSquaredErrorMetric : IValidationMetric
{
    private double _sumSquares;
    private long _total;

    /// <inheritdoc />
    public string Name => "RMSE";

    /// <inheritdoc />
    public bool HigherIsBetter => false;

    /// <inheritdoc />
    public void Update(Tensor output, Batch batch)
    {
        using var diff = output.reshape(-1) - batch.Targets[0];
        using var squares = diff.square().sum();
        _sumSquares += squares.item<float>();
        _total += batch.Count;
    }

    /// <inheritdoc />
    public double Compute() => _total == 0 ? 0 : Math.Sqrt(_sumSquares / _total);

    /// <inheritdoc />
    public double[] GetSums() => new double[] { _sumSquares, _total };

    /// <inheritdoc />
    public void SetSums(ReadOnlySpan<double> sums) => (_sumSquares, _total) = (sums[0], (long)sums[1]);
}
