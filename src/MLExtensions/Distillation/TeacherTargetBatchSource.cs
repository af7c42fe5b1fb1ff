using MLExtensions.Core;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// Splits the rows read by <see cref="TeacherTargetRowReader"/> back into the student's input (<c>Inputs[0]</c>) and the
/// teacher's outputs (<c>Targets[1]</c>), so student tasks see ordinary batches.
/// </summary>
internal sealed class TeacherTargetBatchSource : IBatchSource
{
    private readonly IBatchSource _inner;
    private readonly int _featureSize;

    public TeacherTargetBatchSource(IBatchSource inner, int featureSize)
    {
        _inner = inner;
        _featureSize = featureSize;
    }

    public long? RowCount => _inner.RowCount;

    public IEnumerable<Batch> GetBatches(int epoch, int batchSize, bool shuffle, int seed)
    {
        foreach (var batch in _inner.GetBatches(epoch, batchSize, shuffle, seed))
        {
            using (batch)
            {
                var row = batch.Inputs[0];
                var features = row.narrow(1, 0, _featureSize).contiguous();
                var teacher = row.narrow(1, _featureSize, row.shape[1] - _featureSize).contiguous();
                yield return new Batch(new[] { features }, new[] { batch.Targets[0].clone(), teacher }, batch.Count);
            }
        }
    }
}
