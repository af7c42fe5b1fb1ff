using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace MLExtensions.Core;

/// <summary>Element types of ONNX tensors; the values are ONNX's own <c>TensorProto.DataType</c> codes.</summary>
public enum OnnxElementType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>32-bit float.</summary>
    Float = 1,
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,
    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,
    /// <summary>String.</summary>
    String = 8,
    /// <summary>Boolean.</summary>
    Bool = 9,
    /// <summary>IEEE half precision.</summary>
    Float16 = 10,
    /// <summary>64-bit float.</summary>
    Double = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
    /// <summary>bfloat16.</summary>
    BFloat16 = 16,
}

/// <summary>Where a constant tensor of an ONNX graph comes from.</summary>
public enum OnnxTensorOrigin
{
    /// <summary>An entry of the graph's <c>initializer</c> list.</summary>
    Initializer,
    /// <summary>The value of a <c>Constant</c> node (the tensor is named after the node's output).</summary>
    ConstantNode,
    /// <summary>A tensor-valued attribute of a node other than <c>Constant</c>.</summary>
    Attribute,
}

/// <summary>
/// A constant tensor of an ONNX model (an initializer, a <c>Constant</c> node's value or a tensor attribute).
/// The values are decoded on request, from <c>raw_data</c> (little-endian) or from the typed repeated fields.
/// </summary>
public sealed class OnnxTensor
{
    private readonly TensorProto _proto;
    private readonly string _source;

    internal OnnxTensor(TensorProto proto, string name, OnnxTensorOrigin origin, string source)
    {
        _proto = proto;
        _source = source;
        Name = name;
        Origin = origin;
        Dims = proto.Dims.ToArray();
        ElementType = (OnnxElementType)proto.DataType;
        long count = 1;
        foreach (long d in Dims)
        {
            if (d < 0)
                throw new InvalidDataException($"Tensor '{name}' in {source} has a negative dimension ([{string.Join(", ", Dims)}]); the file is corrupt.");
            count = checked(count * d);
        }
        ElementCount = count;
    }

    /// <summary>The tensor's name: the initializer name, or the output name of the <c>Constant</c> node.</summary>
    public string Name { get; }

    /// <summary>Where the tensor is defined in the graph.</summary>
    public OnnxTensorOrigin Origin { get; }

    /// <summary>The shape (empty for a scalar).</summary>
    public IReadOnlyList<long> Dims { get; }

    /// <summary>The element type as stored in the file.</summary>
    public OnnxElementType ElementType { get; }

    /// <summary>Number of elements (the product of <see cref="Dims"/>; 1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Name} {ElementType}[{string.Join(",", Dims)}]";

    /// <summary>
    /// The values as floats in row-major order. <c>Float</c> is returned exactly; <c>Double</c>, <c>Float16</c> and
    /// <c>BFloat16</c> are converted.
    /// </summary>
    /// <exception cref="NotSupportedException">The element type is not a floating-point type, or the data is stored outside the file.</exception>
    /// <exception cref="InvalidDataException">The stored data does not match the shape.</exception>
    public float[] ToFloatArray()
    {
        CheckEmbedded();
        var raw = _proto.RawData;
        switch (ElementType)
        {
            case OnnxElementType.Float:
                if (!raw.IsEmpty)
                    return FromRaw<float>(raw, 4, BinaryPrimitives.ReadSingleLittleEndian);
                return Checked(_proto.FloatData.ToArray());
            case OnnxElementType.Double:
                var doubles = !raw.IsEmpty ? FromRaw<double>(raw, 8, BinaryPrimitives.ReadDoubleLittleEndian) : Checked(_proto.DoubleData.ToArray());
                return Array.ConvertAll(doubles, d => (float)d);
            case OnnxElementType.Float16:
                // Without raw_data, 16-bit values are stored one per int32_data entry (low 16 bits).
                if (!raw.IsEmpty)
                    return Array.ConvertAll(FromRaw<Half>(raw, 2, BinaryPrimitives.ReadHalfLittleEndian), h => (float)h);
                return Array.ConvertAll(Checked(_proto.Int32Data.ToArray()), bits => (float)BitConverter.UInt16BitsToHalf((ushort)bits));
            case OnnxElementType.BFloat16:
                var bf = !raw.IsEmpty
                    ? FromRaw<ushort>(raw, 2, BinaryPrimitives.ReadUInt16LittleEndian)
                    : Array.ConvertAll(Checked(_proto.Int32Data.ToArray()), bits => (ushort)bits);
                return Array.ConvertAll(bf, bits => BitConverter.Int32BitsToSingle(bits << 16));
            default:
                throw new NotSupportedException($"Tensor '{Name}' in {_source} has element type {ElementType}; only floating-point tensors can be read as floats.");
        }
    }

    /// <summary>The values of an integer or boolean tensor as 64-bit integers, in row-major order (for shapes, axes, indices).</summary>
    /// <exception cref="NotSupportedException">The element type is not an integer or boolean type, or the data is stored outside the file.</exception>
    /// <exception cref="InvalidDataException">The stored data does not match the shape.</exception>
    public long[] ToInt64Array()
    {
        CheckEmbedded();
        var raw = _proto.RawData;
        bool hasRaw = !raw.IsEmpty;
        switch (ElementType)
        {
            case OnnxElementType.Int64:
                return hasRaw ? FromRaw<long>(raw, 8, BinaryPrimitives.ReadInt64LittleEndian) : Checked(_proto.Int64Data.ToArray());
            case OnnxElementType.UInt64:
                var u64 = hasRaw ? FromRaw<ulong>(raw, 8, BinaryPrimitives.ReadUInt64LittleEndian) : Checked(_proto.Uint64Data.ToArray());
                return Array.ConvertAll(u64, v => checked((long)v));
            case OnnxElementType.UInt32:
                var u32 = hasRaw ? FromRaw<uint>(raw, 4, BinaryPrimitives.ReadUInt32LittleEndian) : Array.ConvertAll(Checked(_proto.Uint64Data.ToArray()), v => (uint)v);
                return Array.ConvertAll(u32, v => (long)v);
            case OnnxElementType.Int32:
                return Array.ConvertAll(hasRaw ? FromRaw<int>(raw, 4, BinaryPrimitives.ReadInt32LittleEndian) : Checked(_proto.Int32Data.ToArray()), v => (long)v);
            case OnnxElementType.Int16:
                return hasRaw ? Array.ConvertAll(FromRaw<short>(raw, 2, BinaryPrimitives.ReadInt16LittleEndian), v => (long)v) : Int32Field();
            case OnnxElementType.UInt16:
                return hasRaw ? Array.ConvertAll(FromRaw<ushort>(raw, 2, BinaryPrimitives.ReadUInt16LittleEndian), v => (long)v) : Int32Field();
            case OnnxElementType.Int8:
                return hasRaw ? Array.ConvertAll(FromRaw<sbyte>(raw, 1, s => (sbyte)s[0]), v => (long)v) : Int32Field();
            case OnnxElementType.UInt8:
            case OnnxElementType.Bool:
                return hasRaw ? Array.ConvertAll(FromRaw<byte>(raw, 1, s => s[0]), v => (long)v) : Int32Field();
            default:
                throw new NotSupportedException($"Tensor '{Name}' in {_source} has element type {ElementType}; only integer and boolean tensors can be read as integers.");
        }
    }

    private long[] Int32Field() => Array.ConvertAll(Checked(_proto.Int32Data.ToArray()), v => (long)v);

    private void CheckEmbedded()
    {
        if (_proto.DataLocation == TensorProto.Types.DataLocation.External)
            throw new NotSupportedException($"Tensor '{Name}' in {_source} is stored in an external data file; external data is not supported.");
    }

    private T[] Checked<T>(T[] values)
    {
        if (values.LongLength != ElementCount)
            throw new InvalidDataException($"Tensor '{Name}' in {_source} holds {values.LongLength} values but its shape [{string.Join(", ", Dims)}] needs {ElementCount}; the file is corrupt.");
        return values;
    }

    private delegate T LittleEndianReader<T>(ReadOnlySpan<byte> bytes);

    private T[] FromRaw<T>(ByteString raw, int size, LittleEndianReader<T> read) where T : unmanaged
    {
        var bytes = raw.Span;
        if (bytes.Length != ElementCount * size)
            throw new InvalidDataException($"Tensor '{Name}' in {_source} has {bytes.Length} bytes of raw data but its shape [{string.Join(", ", Dims)}] of {ElementType} needs {ElementCount * size}; the file is corrupt.");
        var values = new T[ElementCount];
        if (BitConverter.IsLittleEndian)
        {
            bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            return values;
        }
        for (int i = 0; i < values.Length; i++)
            values[i] = read(bytes.Slice(i * size, size));
        return values;
    }
}
