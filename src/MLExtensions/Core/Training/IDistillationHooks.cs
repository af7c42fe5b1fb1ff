using Microsoft.ML;

namespace MLExtensions.Core;

/// <summary>
/// The seam through which knowledge distillation reuses an ordinary trainer for its student: the trainer keeps
/// its data preparation, network and phases, and the hooks add the teacher's outputs to every batch
/// (<c>Batch.Targets[1]</c>) and put the distillation loss around every task it trains.
/// </summary>
internal interface IDistillationHooks
{
    /// <summary>The column with the teacher's cached outputs (one float vector per row).</summary>
    string TeacherColumnName { get; }

    /// <summary>Values per row in <see cref="TeacherColumnName"/>.</summary>
    int TeacherOutputCount { get; }

    /// <summary>Wraps a trainer's row reader so rows also carry the teacher's outputs and unlabeled rows are kept.</summary>
    IRowReaderFactory WrapReader(IRowReaderFactory reader, DataViewSchema schema);

    /// <summary>Turns sources read through <see cref="WrapReader"/> into batches with the teacher's outputs as a second target.</summary>
    TrainingData WrapData(TrainingData data);

    /// <summary>Initialises the freshly built student from the teacher, when the options ask for it.</summary>
    void InitializeStudent(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> network, TorchSharp.torch.Generator generator, Microsoft.ML.Runtime.IChannel channel);

    /// <summary>Puts the distillation loss around a trainer's task.</summary>
    ITrainingTask WrapTask(ITrainingTask task, TrainingContext context);
}
