using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;
using MLExtensions.Core.Internals;


namespace MLExtensions.Distillation;

/// <summary>
/// Trains a small student network to imitate a fitted teacher (any ML.NET classifier, or a network of this library). Create it
/// through <c>mlContext.{BinaryClassification|MulticlassClassification}.Trainers.Distill</c>.
/// </summary>
/// <remarks>
/// <para>The teacher scores every training row once (streaming, one row at a time); its outputs travel with the rows, so epochs
/// never re-run it. Rows without a label still teach through the teacher's outputs, so unlabeled transfer data can simply be
/// appended to the training data with a missing label.</para>
/// <para>The student is trained by its ordinary trainer (<see cref="NeuralNetworkTrainer"/>, <see cref="ImageClassifierTrainer"/>,
/// <see cref="TextClassifierTrainer"/>) with the distillation loss, so it keeps that trainer's preprocessing, augmentation,
/// validation, early stopping, progress and checkpoints, and the result is that trainer's ordinary transformer.</para>
/// </remarks>
public sealed class DistillationTrainer : IEstimator<NetworkTransformerBase>
{
    /// <summary>Name of the column that carries the teacher's outputs through the student's data pipeline.</summary>
    internal const string TeacherColumnName = "__MLExtensions_TeacherOutputs";

    private readonly IHost _host;
    private readonly ITransformer _teacher;
    private readonly DistillationOptions _options;
    private readonly PredictionTask _kind;

    internal DistillationTrainer(IHostEnvironment env, ITransformer teacher, DistillationOptions options, PredictionTask kind)
    {
        _host = (env ?? throw new ArgumentNullException(nameof(env))).Register(nameof(DistillationTrainer));
        _teacher = teacher ?? throw new ArgumentNullException(nameof(teacher));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _kind = kind;
        _options.Validate();
        if (kind == PredictionTask.BinaryClassification && options.Student is ImageClassifierOptions)
            throw new ArgumentException("Image classifier students are multiclass; use the multiclass Distill with a two-class key label.", nameof(options));
    }

    /// <summary>What the last <see cref="Fit"/> did: parameter counts and validation accuracies of teacher and student.</summary>
    public DistillationReport? LastReport { get; private set; }

    /// <summary>The student's training history of the last <see cref="Fit"/>.</summary>
    public TrainingState? LastTrainingState { get; private set; }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => CreateStudentTrainer() switch
    {
        NeuralNetworkTrainer t => t.GetOutputSchema(inputSchema),
        ImageClassifierTrainer t => t.GetOutputSchema(inputSchema),
        TextClassifierTrainer t => t.GetOutputSchema(inputSchema),
        var t => throw new InvalidOperationException($"Unexpected student trainer {t.GetType().Name}."),
    };

    /// <summary>Scores the data with the teacher once, then trains the student.</summary>
    /// <exception cref="ArgumentException">The teacher has no score column, cannot read the data, or classifies other classes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A student input or label column is missing or has the wrong type.</exception>
    /// <exception cref="OperationCanceledException">The student options' cancellation token was cancelled.</exception>
    public NetworkTransformerBase Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        if (_options.Student!.DataParallel is null)
            return FitInThisProcess(input, null);
        var communicator = DataParallel.Communicator;
        try
        {
            return FitInThisProcess(input, communicator.Size > 1 ? communicator : null);
        }
        catch (Exception e) when (communicator.Size > 1)
        {
            // The other ranks would wait forever in their next collective: end the job with this rank's message.
            DataParallel.Abort(e);
            throw;
        }
    }

    /// <summary>The teacher pass and the student's training; <paramref name="parallel"/> shares the teacher pass between ranks.</summary>
    private NetworkTransformerBase FitInThisProcess(IDataView input, MLExtensions.Core.Distributed.MpiCommunicator? parallel)
    {
        var student = _options.Student!;
        TorchNativeLoader.EnsureLoaded();
        using var channel = _host.Start("Distillation");

        // Check everything the student needs before the (possibly slow) teacher pass.
        GetOutputSchema(SchemaShape.Create(input.Schema));
        var label = LabelBinding.Bind(input.Schema, LabelColumn(student), _kind);
        var teacher = TeacherBinding.Bind(_teacher, input.Schema, label, _options);
        OnlineTeachers.Validate(teacher, _options);
        if (student.ValidationData is { } validationData)
            TeacherBinding.Bind(_teacher, validationData.Schema, LabelBinding.Bind(validationData.Schema, LabelColumn(student), _kind), _options);

        var originalValidation = student.ValidationData;
        try
        {
            var training = _options.Text.AddsSentenceRows ? AddSentenceRows(input, (TextClassifierOptions)student, channel) : input;
            var outputs = TeacherOutputs.Compute(teacher, training, channel, student.CancellationToken, parallel);
            channel.Info(MessageSensitivity.None, "Teacher scored {0} training rows; soft targets: {1}; temperature {2}, alpha {3}.",
                outputs.Rows, outputs.Source, _options.Temperature, _options.Alpha);
            var trainView = new TeacherColumnDataView(training, outputs, TeacherColumnName);
            if (student.ValidationData is { } validation)
                student.ValidationData = new TeacherColumnDataView(validation, TeacherOutputs.Compute(teacher, validation, channel, student.CancellationToken, parallel), TeacherColumnName);

            var loss = new DistillationLoss(_kind, _options.Temperature, _options.Alpha);
            using var hooks = new StudentHooks(TeacherColumnName, outputs.Count, LabelColumn(student), _kind, loss,
                (task, context) => OnlineTeachers.Create(teacher, _options, task, context),
                (network, log) => OnlineTeachers.InitializeStudent(teacher, _options, network, log));
            var model = CreateStudentTrainer() switch
            {
                NeuralNetworkTrainer t => FitStudent(t, trainView, hooks),
                ImageClassifierTrainer t => FitStudent(t, trainView, hooks),
                TextClassifierTrainer t => FitStudent(t, trainView, hooks),
                var t => throw new InvalidOperationException($"Unexpected student trainer {t.GetType().Name}."),
            };
            var state = LastTrainingState!;
            double? studentAccuracy = state.History.FirstOrDefault(e => e.Epoch == state.BestEpoch)?.ValidationMetric;
            LastReport = new DistillationReport(outputs.Source, outputs.Rows, teacher.ParameterCount,
                model.Network.parameters().Sum(p => p.numel()), hooks.TeacherAccuracy.Value, studentAccuracy);
            channel.Info(MessageSensitivity.None, "Distillation done: {0}.", LastReport);
            return model;
        }
        finally
        {
            student.ValidationData = originalValidation;
        }
    }

    /// <summary>
    /// Holds out the validation rows first (unless validation data was given), so that no sentence of a validation text is
    /// trained on, then adds the unlabeled sentence rows to the rest.
    /// </summary>
    private IDataView AddSentenceRows(IDataView input, TextClassifierOptions student, IChannel channel)
    {
        int seed = TorchDevices.ResolveSeed(_host, student.Seed);
        var training = input;
        if (student.ValidationData is null && student.ValidationFraction > 0)
        {
            // The same seeded split the student's trainer would make, taken here so the added rows come from its training part only.
            var (train, validation) = TrainingData.Split(_host, input, student, seed);
            training = train;
            student.ValidationData = validation;
        }
        var expanded = SentenceRowsDataView.Create(training, student.TextColumnName, student.LabelColumnName, _options.Text,
            Seeds.Derive(seed, Seeds.SentenceRows), student.CancellationToken);
        channel.Info(MessageSensitivity.None, "Added {0} unlabeled rows made of the sentences of {1} training texts (sentences and pairs: {2}; " +
            "one sentence left out: {3}; recombined: {4}).", expanded.AddedRows, expanded.SourceRows, _options.Text.AddSentences,
            _options.Text.AddLeaveOneSentenceOut, _options.Text.RecombinedSentenceRows);
        return expanded;
    }

    private NetworkTransformerBase FitStudent<T>(NetworkTrainerBase<T> trainer, IDataView data, StudentHooks hooks)
        where T : NetworkTransformerBase
    {
        trainer.Distillation = hooks;
        var model = trainer.Fit(data);
        LastTrainingState = trainer.LastTrainingState;
        return model;
    }

    private object CreateStudentTrainer() => _options.Student switch
    {
        NeuralNetworkOptions o => new NeuralNetworkTrainer(_host, o, _kind),
        ImageClassifierOptions o => new ImageClassifierTrainer(_host, o),
        TextClassifierOptions o => new TextClassifierTrainer(_host, o, _kind),
        var o => throw new ArgumentException($"Unsupported student options {o?.GetType().Name ?? "null"}."),
    };

    private static string LabelColumn(NetworkTrainerOptions student) => student switch
    {
        NeuralNetworkOptions o => o.LabelColumnName,
        ImageClassifierOptions o => o.LabelColumnName,
        TextClassifierOptions o => o.LabelColumnName,
        _ => "Label",
    };
}
