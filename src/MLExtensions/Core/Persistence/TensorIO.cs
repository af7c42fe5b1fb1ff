using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>Writes and reads single tensors as (dtype, shape, raw little-endian bytes).</summary>
internal static class TensorIO
{
    public static void Write(BinaryWriter writer, Tensor tensor)
    {
        using var cpu = tensor.device.type == DeviceType.CPU ? tensor.contiguous() : tensor.cpu().contiguous();
        writer.Write((int)cpu.dtype);
        writer.Write(cpu.shape.Length);
        foreach (long d in cpu.shape)
            writer.Write(d);
        var bytes = cpu.bytes;
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    public static Tensor Read(BinaryReader reader)
    {
        var dtype = (ScalarType)reader.ReadInt32();
        int rank = reader.ReadInt32();
        if (rank < 0 || rank > 16)
            throw new InvalidDataException($"Corrupted tensor record: rank {rank}.");
        var shape = new long[rank];
        for (int i = 0; i < rank; i++)
            shape[i] = reader.ReadInt64();
        int length = reader.ReadInt32();
        var bytes = reader.ReadBytes(length);
        if (bytes.Length != length)
            throw new InvalidDataException("Corrupted tensor record: the data ends early.");
        var tensor = torch.empty(shape, dtype);
        if (tensor.bytes.Length != length)
        {
            tensor.Dispose();
            throw new InvalidDataException($"Corrupted tensor record: {length} bytes for shape [{string.Join(", ", shape)}] of {dtype}.");
        }
        tensor.bytes = bytes;
        return tensor;
    }
}
