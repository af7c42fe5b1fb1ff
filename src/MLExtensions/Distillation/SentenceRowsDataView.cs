using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>
/// The training data with unlabeled rows added after each row: the derived texts <see cref="SentenceTransferSet"/> planned for it.
/// An added row is its source row with the text replaced and the label missing (NaN, or key 0); every other column is the
/// source row's, so a teacher that reads more than the text can still score it.
/// </summary>
/// <remarks>
/// A Boolean label has no missing value, so this view shows it as Single (1, 0, NaN for an added row), which the binary student
/// reads the same way. Rows come in the same order on every pass, as the teacher's cached outputs require.
/// </remarks>
internal sealed class SentenceRowsDataView : IDataView
{
    private readonly IDataView _source;
    private readonly int _textIndex;
    private readonly int _labelIndex;
    private readonly bool _booleanLabel;
    private readonly List<string>[] _plan;

    private SentenceRowsDataView(IDataView source, int textIndex, int labelIndex, List<string>[] plan)
    {
        _source = source;
        _textIndex = textIndex;
        _labelIndex = labelIndex;
        _plan = plan;
        _booleanLabel = source.Schema[labelIndex].Type == BooleanDataViewType.Instance;
        var builder = new DataViewSchema.Builder();
        for (int i = 0; i < source.Schema.Count; i++)
        {
            var column = source.Schema[i];
            builder.AddColumn(column.Name, i == labelIndex && _booleanLabel ? NumberDataViewType.Single : column.Type, column.Annotations);
        }
        Schema = builder.ToSchema();
        AddedRows = plan.Sum(p => (long)p.Count);
    }

    /// <summary>Number of rows of the source data.</summary>
    public int SourceRows => _plan.Length;

    /// <summary>Number of unlabeled rows added.</summary>
    public long AddedRows { get; }

    /// <summary>Reads the text column once, plans the added rows and returns the view.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The text or label column is missing or has the wrong type.</exception>
    public static SentenceRowsDataView Create(IDataView source, string textColumn, string labelColumn, TextDistillationOptions options, int seed,
        CancellationToken cancellation)
    {
        var text = source.Schema.GetColumnOrNull(textColumn) ?? throw SchemaErrors.Missing("text", textColumn, source.Schema);
        if (text.Type is not TextDataViewType)
            throw SchemaErrors.WrongType("text", textColumn, "Text (String)", text.Type);
        var label = source.Schema.GetColumnOrNull(labelColumn) ?? throw SchemaErrors.Missing("label", labelColumn, source.Schema);
        bool canBeMissing = label.Type == BooleanDataViewType.Instance || label.Type == NumberDataViewType.Single
            || label.Type is KeyDataViewType key && key.RawType == typeof(uint);
        if (!canBeMissing)
            throw SchemaErrors.WrongType("label", labelColumn, "Boolean, Single or Key<UInt32> (a type that can mark the added rows unlabeled)", label.Type);

        var texts = new List<string>();
        using (var cursor = source.GetRowCursor(new[] { text }))
        {
            var get = cursor.GetGetter<ReadOnlyMemory<char>>(text);
            ReadOnlyMemory<char> value = default;
            while (cursor.MoveNext())
            {
                cancellation.ThrowIfCancellationRequested();
                get(ref value);
                texts.Add(value.ToString());
            }
        }
        return new SentenceRowsDataView(source, text.Index, label.Index, SentenceTransferSet.Plan(texts, options, seed));
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _plan.Length + AddedRows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = columnsNeeded.Select(c => c.Index).ToHashSet();
        // The text and label are always read: an added row replaces them.
        var needed = active.Append(_textIndex).Append(_labelIndex).Distinct().Select(i => _source.Schema[i]);
        return new Cursor(this, _source.GetRowCursor(needed), active);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly SentenceRowsDataView _parent;
        private readonly DataViewRowCursor _inner;
        private readonly HashSet<int> _active;
        private long _position = -1;
        private List<string>? _derived;
        private int _added = -1; // -1: the source row itself; otherwise the index of the added text

        public Cursor(SentenceRowsDataView parent, DataViewRowCursor inner, HashSet<int> active)
        {
            _parent = parent;
            _inner = inner;
            _active = active;
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_derived is not null && _added + 1 < _derived.Count)
            {
                _added++;
                _position++;
                return true;
            }
            if (!_inner.MoveNext())
                return false;
            long source = _inner.Position;
            if (source >= _parent._plan.Length)
                throw new InvalidOperationException(
                    $"The data produced more rows than the {_parent._plan.Length} read when the sentence rows were planned; it must give the same rows on every pass.");
            _derived = _parent._plan[source];
            _added = -1;
            _position++;
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == _parent._textIndex)
                return (ValueGetter<TValue>)(Delegate)TextGetter();
            if (column.Index == _parent._labelIndex)
                return _parent._booleanLabel ? (ValueGetter<TValue>)(Delegate)BooleanAsSingleLabelGetter() : LabelGetter<TValue>();
            return _inner.GetGetter<TValue>(_inner.Schema[column.Index]);
        }

        private ValueGetter<ReadOnlyMemory<char>> TextGetter()
        {
            var source = _inner.GetGetter<ReadOnlyMemory<char>>(_inner.Schema[_parent._textIndex]);
            return (ref ReadOnlyMemory<char> value) =>
            {
                if (_added < 0)
                    source(ref value);
                else
                    value = _derived![_added].AsMemory();
            };
        }

        private ValueGetter<float> BooleanAsSingleLabelGetter()
        {
            var source = _inner.GetGetter<bool>(_inner.Schema[_parent._labelIndex]);
            bool label = false;
            return (ref float value) =>
            {
                if (_added >= 0)
                {
                    value = float.NaN;
                    return;
                }
                source(ref label);
                value = label ? 1 : 0;
            };
        }

        /// <summary>Single (NaN when added) or Key&lt;UInt32&gt; (0 when added): the source row's label, or ML.NET's missing value.</summary>
        private ValueGetter<TValue> LabelGetter<TValue>()
        {
            var source = _inner.GetGetter<TValue>(_inner.Schema[_parent._labelIndex]);
            TValue missing = typeof(TValue) == typeof(float) ? (TValue)(object)float.NaN : default!;
            return (ref TValue value) =>
            {
                if (_added < 0)
                    source(ref value);
                else
                    value = missing;
            };
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
