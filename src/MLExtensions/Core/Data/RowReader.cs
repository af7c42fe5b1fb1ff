using Microsoft.ML;

namespace MLExtensions.Core;

/// <summary>The outcome of reading one row.</summary>
public enum RowStatus
{
    /// <summary>The row was read into the buffers.</summary>
    Ok,

    /// <summary>The row has no label (missing key, NaN) and is skipped.</summary>
    MissingLabel,

    /// <summary>The row has invalid features and the options ask to skip such rows.</summary>
    Skipped,
}

/// <summary>Reads the current row of a cursor into a feature buffer and a target value.</summary>
/// <param name="features">Receives <see cref="IRowReaderFactory.FeatureSize"/> floats.</param>
/// <param name="target">Receives the label: the value (regression), 0/1 (binary) or the 0-based class index (multiclass).</param>
public delegate RowStatus RowReader(Span<float> features, out float target);

/// <summary>Turns rows of an <see cref="IDataView"/> into fixed-size float feature vectors and targets.</summary>
/// <remarks>Implementations validate the schema when created; each cursor gets its own reader and buffers.</remarks>
public interface IRowReaderFactory
{
    /// <summary>Floats per row.</summary>
    int FeatureSize { get; }

    /// <summary>The prediction task, which decides the target tensor's type.</summary>
    PredictionTask Kind { get; }

    /// <summary>The columns a cursor must activate.</summary>
    IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema);

    /// <summary>How the log describes rows this reader skipped (<see cref="RowStatus.Skipped"/>), e.g. "with NaN or infinite features".</summary>
    string SkippedRowDescription => "with NaN or infinite features";

    /// <summary>A reader bound to <paramref name="row"/>; <paramref name="withLabel"/> false reads features only.</summary>
    RowReader Create(DataViewRow row, bool withLabel);
}
