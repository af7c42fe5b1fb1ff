using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Core;

/// <summary>A detached copy of a module's parameters and buffers, to restore later (best weights).</summary>
internal sealed class WeightSnapshot : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors;

    private WeightSnapshot(Dictionary<string, Tensor> tensors) => _tensors = tensors;

    public static WeightSnapshot Take(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        var copy = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
        return new WeightSnapshot(copy);
    }

    public void RestoreInto(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in module.state_dict())
            target.copy_(_tensors[name]);
    }

    /// <summary>Describes the first difference in names or shapes from <paramref name="module"/>'s state, or null when they match.</summary>
    public string? Mismatch(nn.Module module)
    {
        var target = module.state_dict();
        foreach (var (name, tensor) in target)
        {
            if (!_tensors.TryGetValue(name, out var saved))
                return $"'{name}' is missing";
            if (!saved.shape.SequenceEqual(tensor.shape))
                return $"'{name}' has shape [{string.Join(", ", saved.shape)}], expected [{string.Join(", ", tensor.shape)}]";
        }
        var extra = _tensors.Keys.FirstOrDefault(k => !target.ContainsKey(k));
        return extra is null ? null : $"'{extra}' is not part of the network";
    }

    /// <summary>Writes the tensors in name order.</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(_tensors.Count);
        foreach (var (name, tensor) in _tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            writer.Write(name);
            TensorIO.Write(writer, tensor);
        }
    }

    public static WeightSnapshot Load(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        var tensors = new Dictionary<string, Tensor>(count);
        for (int i = 0; i < count; i++)
            tensors[reader.ReadString()] = TensorIO.Read(reader).DetachFromDisposeScope();
        return new WeightSnapshot(tensors);
    }

    public void Dispose()
    {
        foreach (var t in _tensors.Values)
            t.Dispose();
    }
}
