using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Distillation;

/// <summary>
/// The training data plus one column holding the teacher's cached outputs for each row, looked up by the row's position.
/// Lets the student's ordinary row readers, splits and batch sources see the teacher's outputs without running the teacher again.
/// </summary>
/// <remarks>
/// Rows are matched by position, so the view never shuffles its source and hands out a single cursor; ML.NET views produce
/// their rows in the same order on every pass, which is what makes the positions stable.
/// </remarks>
internal sealed class TeacherColumnDataView : IDataView
{
    private readonly IDataView _source;
    private readonly TeacherOutputs _outputs;
    private readonly int _teacherIndex;

    public TeacherColumnDataView(IDataView source, TeacherOutputs outputs, string columnName)
    {
        _source = source;
        _outputs = outputs;
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(source.Schema);
        builder.AddColumn(columnName, new VectorDataViewType(NumberDataViewType.Single, outputs.Count));
        Schema = builder.ToSchema();
        _teacherIndex = Schema.Count - 1;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _outputs.Rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Where(c => c.Index != _teacherIndex).Select(c => _source.Schema[c.Index]);
        return new Cursor(this, _source.GetRowCursor(needed), columnsNeeded.Any(c => c.Index == _teacherIndex));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly TeacherColumnDataView _parent;
        private readonly DataViewRowCursor _inner;
        private readonly bool _teacherActive;

        public Cursor(TeacherColumnDataView parent, DataViewRowCursor inner, bool teacherActive)
        {
            _parent = parent;
            _inner = inner;
            _teacherActive = teacherActive;
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _inner.Position;

        public override long Batch => _inner.Batch;

        public override bool MoveNext()
        {
            if (!_inner.MoveNext())
                return false;
            if (_inner.Position >= _parent._outputs.Rows)
                throw new InvalidOperationException(
                    $"The data produced more rows than the {_parent._outputs.Rows} the teacher scored; it must give the same rows on every pass.");
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index == _parent._teacherIndex ? _teacherActive : _inner.IsColumnActive(_inner.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != _parent._teacherIndex)
                return _inner.GetGetter<TValue>(_inner.Schema[column.Index]);
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"The teacher column '{column.Name}' is a vector of Single; a getter of {typeof(TValue).Name} was asked for.");
            var outputs = _parent._outputs;
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                var editor = VBufferEditor.Create(ref value, outputs.Count);
                outputs.Row(_inner.Position).CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => _inner.GetIdGetter();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
