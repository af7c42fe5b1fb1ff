using Microsoft.ML;
using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>
/// What the student's trainer is told while it trains under distillation: read the teacher's column with the rows, and
/// train every task with the distillation loss.
/// </summary>
internal sealed class StudentHooks : IDistillationHooks, IDisposable
{
    private readonly List<IOnlineTeacher> _online = new();
    private readonly Action<TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>, Microsoft.ML.Runtime.IChannel> _initialize;
    private readonly string _labelColumn;
    private readonly PredictionTask _kind;
    private readonly DistillationLoss _loss;
    private readonly Func<ITrainingTask, TrainingContext, IOnlineTeacher?> _onlineTeacher;
    private int _featureSize = -1;

    public StudentHooks(string teacherColumn, int teacherCount, string labelColumn, PredictionTask kind, DistillationLoss loss,
        Func<ITrainingTask, TrainingContext, IOnlineTeacher?> onlineTeacher,
        Action<TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>, Microsoft.ML.Runtime.IChannel> initialize)
    {
        _initialize = initialize;
        TeacherColumnName = teacherColumn;
        TeacherOutputCount = teacherCount;
        _labelColumn = labelColumn;
        _kind = kind;
        _loss = loss;
        _onlineTeacher = onlineTeacher;
    }

    public string TeacherColumnName { get; }

    public int TeacherOutputCount { get; }

    /// <summary>The teacher's accuracy on the validation rows, measured while validating the student.</summary>
    public TeacherAccuracy TeacherAccuracy { get; } = new();

    public IRowReaderFactory WrapReader(IRowReaderFactory reader, DataViewSchema schema)
    {
        _featureSize = reader.FeatureSize;
        return new TeacherTargetRowReader(reader, LabelBinding.Bind(schema, _labelColumn, _kind), TeacherColumnName, TeacherOutputCount);
    }

    public TrainingData WrapData(TrainingData data)
    {
        if (_featureSize < 0)
            throw new InvalidOperationException("WrapData was called before any row reader was wrapped.");
        var train = new TeacherTargetBatchSource(data.Train, _featureSize);
        var validation = data.Validation is null ? null : new TeacherTargetBatchSource(data.Validation, _featureSize);
        return TrainingData.FromSources(train, validation, data);
    }

    public void InitializeStudent(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> network, TorchSharp.torch.Generator generator, Microsoft.ML.Runtime.IChannel channel) =>
        _initialize(network, channel);

    public ITrainingTask WrapTask(ITrainingTask task, TrainingContext context)
    {
        var online = _onlineTeacher(task, context);
        if (online is not null)
            _online.Add(online);
        return new DistillationTask(task, _loss, online, TeacherAccuracy);
    }

    /// <summary>Undoes what online teachers changed on the teacher and student networks (recording, devices).</summary>
    public void Dispose()
    {
        foreach (var o in _online)
            o.Dispose();
        _online.Clear();
    }
}
