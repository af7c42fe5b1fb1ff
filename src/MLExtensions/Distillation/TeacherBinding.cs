using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;

namespace MLExtensions.Distillation;

/// <summary>
/// A teacher checked against the student's data and label: it reads the data, produces a score column for the same classes
/// (same count; same names, possibly in another order, which is then undone), and, when it is (or ends in) a network of this
/// library, the network whose logits are used.
/// </summary>
internal sealed class TeacherBinding
{
    // For each student class, the teacher's index of the same class; null when both orders agree.
    private readonly long[]? _teacherIndexOfStudentClass;
    private readonly float[] _scratch;

    private TeacherBinding(ITransformer transformer, PredictionTask kind, int outputCount, string scoreColumn, string? probabilityColumn,
        NetworkTransformerBase? network, IReadOnlyList<ITransformer> upstream, int[]? permutation)
    {
        Transformer = transformer;
        Kind = kind;
        OutputCount = outputCount;
        ScoreColumn = scoreColumn;
        ProbabilityColumn = probabilityColumn;
        Network = network;
        Upstream = upstream;
        if (permutation is not null)
        {
            _teacherIndexOfStudentClass = new long[permutation.Length];
            for (int i = 0; i < permutation.Length; i++)
                _teacherIndexOfStudentClass[permutation[i]] = i;
        }
        _scratch = new float[outputCount];
    }

    /// <summary>The teacher as given.</summary>
    public ITransformer Transformer { get; }

    /// <summary>Binary or multiclass.</summary>
    public PredictionTask Kind { get; }

    /// <summary>Outputs per row: K or 1.</summary>
    public int OutputCount { get; }

    /// <summary>The teacher's score column.</summary>
    public string ScoreColumn { get; }

    /// <summary>For binary teachers that are not ours: the probability column used for log-odds, if present.</summary>
    public string? ProbabilityColumn { get; }

    /// <summary>The teacher's network when it is one of this library's transformers (or the last one in its chain).</summary>
    public NetworkTransformerBase? Network { get; }

    /// <summary>Transformers of the teacher's chain that run before <see cref="Network"/>.</summary>
    public IReadOnlyList<ITransformer> Upstream { get; }

    /// <summary>Number of trainable values of the teacher's network, or null when the teacher is not a network of this library.</summary>
    public long? ParameterCount => Network?.Network.parameters().Sum(p => p.numel());

    /// <summary>Puts one row's teacher outputs into the student's class order (in place; one row at a time).</summary>
    public void Reorder(float[] values)
    {
        if (_teacherIndexOfStudentClass is not { } map)
            return;
        values.CopyTo(_scratch, 0);
        for (int i = 0; i < map.Length; i++)
            values[i] = _scratch[map[i]];
    }

    /// <summary>Puts a batch of teacher logits [N, K] into the student's class order.</summary>
    public TorchSharp.torch.Tensor ToStudentOrder(TorchSharp.torch.Tensor logits)
    {
        if (_teacherIndexOfStudentClass is not { } map)
            return logits;
        using var index = TorchSharp.torch.tensor(map, device: logits.device);
        return logits.index_select(1, index);
    }

    /// <summary>Checks <paramref name="teacher"/> against <paramref name="schema"/> and the student's label.</summary>
    /// <exception cref="ArgumentException">The teacher cannot read the data, has no score column, or its classes differ from the label's.</exception>
    public static TeacherBinding Bind(ITransformer teacher, DataViewSchema schema, LabelBinding label, DistillationOptions options)
    {
        DataViewSchema output;
        try
        {
            output = teacher.GetOutputSchema(schema);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"The teacher cannot read the training data: {e.Message}", nameof(teacher), e);
        }
        string scoreName = options.TeacherScoreColumnName;
        var score = output.GetColumnOrNull(scoreName) ?? throw new ArgumentException(
            $"The teacher's output has no '{scoreName}' column (its columns: {string.Join(", ", output.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"))}). " +
            "The teacher must be a fitted classifier, or a pipeline ending in one, that scores the same classes as the student's label.", nameof(teacher));

        var (network, upstream) = FindNetwork(teacher);
        int[]? permutation = null;
        string? probability = null;
        if (label.Kind == PredictionTask.MulticlassClassification)
        {
            if (score.Type is not VectorDataViewType { ItemType: NumberDataViewType n, Size: > 0 } vector || n != NumberDataViewType.Single)
                throw new ArgumentException(
                    $"The teacher's '{scoreName}' column must be a known-size vector of Single (one score per class); found {score.Type}.", nameof(teacher));
            if (vector.Size != label.ClassCount)
                throw new ArgumentException(
                    $"Class count mismatch: the teacher's '{scoreName}' column has {vector.Size} values per row but the label column '{label.Column.Name}' has {label.ClassCount} classes. " +
                    "Teacher and student must classify the same classes.", nameof(teacher));
            permutation = MatchClassNames(SlotNames(score), KeyNames(label.Column), scoreName, label.Column.Name);
        }
        else
        {
            if (score.Type != NumberDataViewType.Single)
                throw new ArgumentException(
                    $"The teacher's '{scoreName}' column must be Single for binary classification (one score per row); found {score.Type}.", nameof(teacher));
            if (network is null && output.GetColumnOrNull(options.TeacherProbabilityColumnName) is { Type: NumberDataViewType p } && p == NumberDataViewType.Single)
                probability = options.TeacherProbabilityColumnName;
        }
        if (network is not null && (network.Kind != label.Kind || network.Outputs.ClassCount != (label.Kind == PredictionTask.MulticlassClassification ? label.ClassCount : 1)))
            network = null; // its raw outputs do not line up with the label; fall back to its score column
        return new TeacherBinding(teacher, label.Kind, label.Kind == PredictionTask.MulticlassClassification ? label.ClassCount : 1,
            scoreName, probability, network, upstream, permutation);
    }

    /// <summary>The last network of this library in the teacher (itself, or an element of its chain), and the steps before it.</summary>
    internal static (NetworkTransformerBase? Network, IReadOnlyList<ITransformer> Upstream) FindNetwork(ITransformer teacher)
    {
        var steps = Flatten(teacher).ToList();
        int last = steps.FindLastIndex(t => t is NetworkTransformerBase);
        return last < 0 ? (null, Array.Empty<ITransformer>()) : ((NetworkTransformerBase)steps[last], steps.Take(last).ToList());
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { transformer };

    private static string[]? SlotNames(DataViewSchema.Column score)
    {
        if (score.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.SlotNames) is not { Type: VectorDataViewType { ItemType: TextDataViewType } })
            return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        score.Annotations.GetValue(AnnotationUtils.Kinds.SlotNames, ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    private static string[]? KeyNames(DataViewSchema.Column label)
    {
        if (label.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is not { Type: VectorDataViewType { ItemType: TextDataViewType } })
            return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        label.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Null when both orders agree (or names are unknown); otherwise the student's index of each teacher class.</summary>
    private static int[]? MatchClassNames(string[]? teacher, string[]? student, string scoreName, string labelName)
    {
        if (teacher is null || student is null || teacher.SequenceEqual(student))
            return null;
        var index = student.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i);
        if (teacher.Length != student.Length || teacher.Distinct().Count() != teacher.Length || teacher.Any(n => !index.ContainsKey(n)))
            throw new ArgumentException(
                $"The teacher's classes ({string.Join(", ", teacher)}) in its '{scoreName}' column differ from the classes of the label column '{labelName}' " +
                $"({string.Join(", ", student)}). Teacher and student must classify the same classes.", "teacher");
        return teacher.Select(n => index[n]).ToArray();
    }
}
