using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLExtensions.Explainability;

/// <summary>
/// The rows KernelSHAP scores for one explained row: every visible column of the explained row copied unchanged, except
/// the explained column, which takes one synthetic value per row (a feature vector or a text). So a pipeline that reads
/// other columns besides the explained one scores the synthetic rows as it would the explained row.
/// </summary>
internal sealed class SyntheticRows : IDataView
{
    private readonly RowSnapshot _snapshot;
    private readonly int _explained;
    private readonly IReadOnlyList<float[]>? _vectors;
    private readonly IReadOnlyList<string>? _texts;
    private readonly (byte[] Alpha, int Height, int Width)? _image;

    private SyntheticRows(RowSnapshot snapshot, int explained, IReadOnlyList<float[]>? vectors, IReadOnlyList<string>? texts,
        (byte[] Alpha, int Height, int Width)? image = null)
    {
        _snapshot = snapshot;
        _explained = explained;
        _vectors = vectors;
        _texts = texts;
        _image = image;
    }

    /// <summary>Rows whose explained column holds <paramref name="vectors"/>.</summary>
    public static SyntheticRows OfVectors(RowSnapshot snapshot, string column, IReadOnlyList<float[]> vectors) =>
        new(snapshot, snapshot.Schema[column].Index, vectors, null);

    /// <summary>Rows whose explained column holds <paramref name="texts"/>.</summary>
    public static SyntheticRows OfTexts(RowSnapshot snapshot, string column, IReadOnlyList<string> texts) =>
        new(snapshot, snapshot.Schema[column].Index, null, texts);

    /// <summary>Rows whose explained MLImage column holds images of the 3×H×W RGB <paramref name="planes"/> with <paramref name="alpha"/>.</summary>
    public static SyntheticRows OfImages(RowSnapshot snapshot, string column, IReadOnlyList<float[]> planes, byte[] alpha, int height, int width) =>
        new(snapshot, snapshot.Schema[column].Index, planes, null, (alpha, height, width));

    public bool CanShuffle => false;

    public DataViewSchema Schema => _snapshot.Schema;

    private int Count => _vectors?.Count ?? _texts!.Count;

    public long? GetRowCount() => Count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly SyntheticRows _rows;
        private long _position = -1;
        // The current row's image, built on first read and disposed when the cursor moves on (the model only reads it).
        private MLImage? _image;
        private long _imagePosition = -1;

        public Cursor(SyntheticRows rows) => _rows = rows;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _image?.Dispose();
            _image = null;
            base.Dispose(disposing);
        }

        public override DataViewSchema Schema => _rows.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            _image?.Dispose();
            _image = null;
            return ++_position < _rows.Count;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != _rows._explained)
                return _rows._snapshot.GetGetter<TValue>(column.Index);
            if (_rows._image is var (alpha, height, width))
            {
                return (ValueGetter<TValue>)(Delegate)(ValueGetter<MLImage>)((ref MLImage dst) =>
                {
                    if (_image is null || _imagePosition != _position)
                    {
                        _image?.Dispose();
                        _image = ImagePixels.FromPlanes(_rows._vectors![(int)_position], alpha, height, width);
                        _imagePosition = _position;
                    }
                    dst = _image;
                });
            }
            Delegate getter = _rows._vectors is { } vectors
                ? (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    var values = vectors[(int)_position];
                    var editor = VBufferEditor.Create(ref dst, values.Length);
                    values.CopyTo(editor.Values);
                    dst = editor.Commit();
                })
                : (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> dst) => dst = _rows._texts![(int)_position].AsMemory());
            return (ValueGetter<TValue>)getter;
        }
    }
}

/// <summary>
/// The values of the visible columns of a cursor's current row, read by <see cref="Take"/> and served by getters to
/// <see cref="SyntheticRows"/>. Per cursor (one explaining thread); vectors are copied, so the cursor may move on.
/// </summary>
internal sealed class RowSnapshot
{
    private readonly Func<Delegate>[] _readers;   // per schema column: reads the row's value and returns a getter serving it
    private readonly Delegate?[] _getters;

    private RowSnapshot(DataViewSchema schema, Func<Delegate>[] readers)
    {
        Schema = schema;
        _readers = readers;
        _getters = new Delegate?[readers.Length];
    }

    /// <summary>The visible columns of the source row (same names, types and annotations).</summary>
    public DataViewSchema Schema { get; }

    /// <summary>Prepares to snapshot the visible columns of <paramref name="row"/>, the explained one included (it is replaced, never read).</summary>
    public static RowSnapshot For(DataViewRow row, string explained)
    {
        var builder = new DataViewSchema.Builder();
        var readers = new List<Func<Delegate>>();
        foreach (var column in row.Schema.Where(c => !c.IsHidden))
        {
            builder.AddColumn(column.Name, column.Type, column.Annotations);
            if (column.Name == explained || !row.IsColumnActive(column))
            {
                // The explained column is synthetic; an inactive column cannot be read, and the model does not need it.
                var name = column.Name;
                readers.Add(() => throw new InvalidOperationException($"Column '{name}' of the explained row was not read."));
                continue;
            }
            var method = column.Type is VectorDataViewType vector
                ? typeof(RowSnapshot).GetMethod(nameof(VectorReader), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.MakeGenericMethod(vector.ItemType.RawType)
                : typeof(RowSnapshot).GetMethod(nameof(ValueReader), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.MakeGenericMethod(column.Type.RawType);
            readers.Add((Func<Delegate>)method.Invoke(null, new object[] { row, column })!);
        }
        return new RowSnapshot(builder.ToSchema(), readers.ToArray());
    }

    /// <summary>Reads the current row's values (call once per explained row, before scoring its synthetic rows).</summary>
    public void Take()
    {
        for (int i = 0; i < _readers.Length; i++)
            _getters[i] = null;
    }

    public ValueGetter<TValue> GetGetter<TValue>(int column) => (ValueGetter<TValue>)(_getters[column] ??= _readers[column]());

    private static Func<Delegate> VectorReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        var get = row.GetGetter<VBuffer<T>>(column);
        return () =>
        {
            VBuffer<T> value = default;
            get(ref value);
            var copy = default(VBuffer<T>);
            value.CopyTo(ref copy);
            return (ValueGetter<VBuffer<T>>)((ref VBuffer<T> dst) => copy.CopyTo(ref dst));
        };
    }

    private static Func<Delegate> ValueReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        var get = row.GetGetter<T>(column);
        return () =>
        {
            T value = default!;
            get(ref value);
            return (ValueGetter<T>)((ref T dst) => dst = value);
        };
    }
}
