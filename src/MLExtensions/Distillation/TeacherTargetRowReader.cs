using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>
/// Wraps a student's row reader: each row's floats are the student's features followed by the teacher's outputs, and rows
/// without a label are kept (marked as by <see cref="MissingTarget"/>) because the teacher still teaches them.
/// <see cref="TeacherTargetBatchSource"/> splits the two parts again.
/// </summary>
/// <remarks>Appending to the feature span lets the existing in-memory and streaming sources carry the teacher's outputs unchanged.</remarks>
internal sealed class TeacherTargetRowReader : IRowReaderFactory
{
    private readonly IRowReaderFactory _inner;
    private readonly LabelBinding _label;
    private readonly string _teacherColumn;
    private readonly int _teacherCount;

    public TeacherTargetRowReader(IRowReaderFactory inner, LabelBinding label, string teacherColumn, int teacherCount)
    {
        _inner = inner;
        _label = label;
        _teacherColumn = teacherColumn;
        _teacherCount = teacherCount;
    }

    public int FeatureSize => _inner.FeatureSize + _teacherCount;

    public PredictionTask Kind => _inner.Kind;

    public string SkippedRowDescription => _inner.SkippedRowDescription;

    public IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema) =>
        _inner.ActiveColumns(schema).Append(schema[_label.Column.Name]).Append(schema[_teacherColumn]).Distinct();

    public RowReader Create(DataViewRow row, bool withLabel)
    {
        var features = _inner.Create(row, withLabel: false);
        var label = withLabel ? _label.CreateTargetGetter(row) : null;
        var teacher = row.GetGetter<VBuffer<float>>(row.Schema[_teacherColumn]);
        VBuffer<float> values = default;
        int size = _inner.FeatureSize;
        float missing = MissingTarget.For(_label.Kind);
        return (Span<float> buffer, out float target) =>
        {
            target = label is null ? 0 : label() ?? missing;
            var status = features(buffer[..size], out _);
            if (status != RowStatus.Ok)
                return status;
            teacher(ref values);
            values.CopyTo(buffer[size..]);
            return RowStatus.Ok;
        };
    }
}
