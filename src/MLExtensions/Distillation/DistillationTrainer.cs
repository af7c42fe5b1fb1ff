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
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => GetOutputSchema(inputSchema, Resolve(inputSchema, null, null));

    private SchemaShape GetOutputSchema(SchemaShape inputSchema, DistillationOptions options)
    {
        CheckStudentReadsTeacherInput(options.Student!, inputSchema);
        return CreateStudentTrainer(options.Student!) switch
        {
        NeuralNetworkTrainer t => t.GetOutputSchema(inputSchema),
        ImageClassifierTrainer t => t.GetOutputSchema(inputSchema),
        TextClassifierTrainer t => t.GetOutputSchema(inputSchema),
        var t => throw new InvalidOperationException($"Unexpected student trainer {t.GetType().Name}."),
        };
    }

    /// <summary>
    /// The options as given, or, when <see cref="DistillationOptions.Student"/> is null, a copy with the default student for this
    /// teacher and data (<see cref="DefaultStudent"/>), logged on <paramref name="channel"/>.
    /// </summary>
    private DistillationOptions Resolve(SchemaShape schema, IDataView? data, IChannel? channel)
    {
        if (_options.Student is not null)
            return _options;
        var choice = DefaultStudent.Choose(_teacher, schema, _options, data is null ? null : CountRows(data));
        channel?.Info(MessageSensitivity.None, "DistillationOptions.Student is null; default student: {0}.", choice.Reason);
        var options = _options.With(choice.Student, choice.Text);
        options.Validate();
        if (_kind == PredictionTask.BinaryClassification && options.Student is ImageClassifierOptions)
            throw new ArgumentException("The default student for an image teacher is an image classifier, which is multiclass; use the multiclass Distill with a two-class key label.", "options");
        return options;
    }

    private static long CountRows(IDataView data)
    {
        if (data.GetRowCount() is long known)
            return known;
        long rows = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext())
            rows++;
        return rows;
    }

    /// <summary>
    /// Student options that cannot read what the teacher reads: a feature-vector student of an image classifier teacher's image
    /// column, or a text student whose text column is not text.
    /// </summary>
    private void CheckStudentReadsTeacherInput(NetworkTrainerOptions student, SchemaShape schema)
    {
        var network = TeacherBinding.FindNetwork(_teacher).Network;
        if (network is ImageClassifierTransformer image && student is NeuralNetworkOptions vector)
            throw new ArgumentException(
                $"The teacher is an image classifier reading the image column '{image.Image.ColumnName}', but DistillationOptions.Student is NeuralNetworkOptions, " +
                $"which reads the feature vector '{vector.FeatureColumnName}'. Set Student to ImageClassifierOptions (ImageColumnName = \"{image.Image.ColumnName}\"), " +
                "or leave it null for the default LeNet-5 student with the teacher's image settings.", "options");
        if (student is TextClassifierOptions text)
        {
            foreach (string? name in new[] { text.TextColumnName, text.SecondTextColumnName })
            {
                if (name is not null && schema.TryFindColumn(name, out var column)
                    && !(column.Kind == SchemaShape.Column.VectorKind.Scalar && column.ItemType is Microsoft.ML.Data.TextDataViewType))
                    throw new ArgumentException(
                        $"DistillationOptions.Student is TextClassifierOptions, which reads text, but its column '{name}' holds " +
                        $"{(column.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : "a vector of ")}{column.ItemType}, not text. Use NeuralNetworkOptions for a " +
                        "feature vector or ImageClassifierOptions for images, set TextColumnName to a text column, or leave Student null to choose from the data.", "options");
            }
        }
    }

    /// <summary>Scores the data with the teacher once, then trains the student.</summary>
    /// <exception cref="ArgumentException">The teacher has no score column, cannot read the data, or classifies other classes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A student input or label column is missing or has the wrong type.</exception>
    /// <exception cref="OperationCanceledException">The student options' cancellation token was cancelled.</exception>
    public NetworkTransformerBase Fit(IDataView input)
    {
        MlNetCompatibility.EnsureCompatible();
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        // A null student gets a default one (single-process); a student of the user's may train data-parallel.
        if (_options.Student?.DataParallel is null)
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
        TorchNativeLoader.EnsureLoaded();
        using var channel = _host.Start("Distillation");
        var options = Resolve(SchemaShape.Create(input.Schema), input, channel);
        var student = options.Student!;

        // Check everything the student needs before the (possibly slow) teacher pass.
        GetOutputSchema(SchemaShape.Create(input.Schema), options);
        var label = LabelBinding.Bind(input.Schema, LabelColumn(student), _kind);
        var teacher = TeacherBinding.Bind(_teacher, input.Schema, label, options);
        OnlineTeachers.Validate(teacher, options);
        if (student.ValidationData is { } validationData)
            TeacherBinding.Bind(_teacher, validationData.Schema, LabelBinding.Bind(validationData.Schema, LabelColumn(student), _kind), options);

        var originalValidation = student.ValidationData;
        try
        {
            var training = options.Text.AddsSentenceRows ? AddSentenceRows(input, (TextClassifierOptions)student, options.Text, channel) : input;
            var outputs = TeacherOutputs.Compute(teacher, training, channel, student.CancellationToken, parallel);
            channel.Info(MessageSensitivity.None, "Teacher scored {0} training rows; soft targets: {1}; temperature {2}, alpha {3}.",
                outputs.Rows, outputs.Source, options.Temperature, options.Alpha);
            var trainView = new TeacherColumnDataView(training, outputs, TeacherColumnName);
            if (student.ValidationData is { } validation)
                student.ValidationData = new TeacherColumnDataView(validation, TeacherOutputs.Compute(teacher, validation, channel, student.CancellationToken, parallel), TeacherColumnName);

            var loss = new DistillationLoss(_kind, options.Temperature, options.Alpha);
            using var hooks = new StudentHooks(TeacherColumnName, outputs.Count, LabelColumn(student), _kind, loss,
                (task, context) => OnlineTeachers.Create(teacher, options, task, context),
                (network, log) => OnlineTeachers.InitializeStudent(teacher, options, network, log));
            var model = CreateStudentTrainer(student) switch
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
    private IDataView AddSentenceRows(IDataView input, TextClassifierOptions student, TextDistillationOptions text, IChannel channel)
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
        var expanded = SentenceRowsDataView.Create(training, student.TextColumnName, student.LabelColumnName, text,
            Seeds.Derive(seed, Seeds.SentenceRows), student.CancellationToken);
        channel.Info(MessageSensitivity.None, "Added {0} unlabeled rows made of the sentences of {1} training texts (sentences and pairs: {2}; " +
            "one sentence left out: {3}; recombined: {4}).", expanded.AddedRows, expanded.SourceRows, text.AddSentences,
            text.AddLeaveOneSentenceOut, text.RecombinedSentenceRows);
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

    private object CreateStudentTrainer(NetworkTrainerOptions student) => student switch
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
