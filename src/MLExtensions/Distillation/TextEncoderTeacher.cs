using MLExtensions.Core;
using MLExtensions.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>
/// A text classifier teacher run on every training batch: it scores the (optionally augmented) token batch the student sees, and
/// its hidden states teach the student's layers through a mean-squared-error term (TinyBERT-style), with a learned projection when
/// the widths differ.
/// </summary>
internal sealed class TextEncoderTeacher : IOnlineTeacher
{
    private readonly TextClassifierNetwork _teacher;
    private readonly TextClassifierNetwork _student;
    private readonly TeacherBinding _binding;
    private readonly TextDistillationOptions _options;
    private readonly TokenAugmenter? _augmenter;
    private readonly int[] _teacherLayerOf; // index into the teacher's hidden states (0 = embeddings) for each student state
    private readonly Linear? _projection;
    private Tensor? _lastInput;

    public TextEncoderTeacher(TextClassifierNetwork teacher, TextClassifierNetwork student, TeacherBinding binding, TextDistillationOptions options,
        TokenAugmenter? augmenter, Generator generator, Device device)
    {
        _teacher = teacher;
        _student = student;
        _binding = binding;
        _options = options;
        _augmenter = augmenter;
        _teacherLayerOf = LayerMap(options.LayerMapping, student.Encoder.Config.Layers, teacher.Encoder.Config.Layers);
        int hs = student.Encoder.Config.HiddenSize, ht = teacher.Encoder.Config.HiddenSize;
        if (options.HiddenStateWeight > 0 && hs != ht)
        {
            _projection = nn.Linear(hs, ht);
            SeededInitialization.Apply(_projection, generator);
            _projection.to(device);
        }
        _teacher.to(device);
        _teacher.eval();
        if (options.HiddenStateWeight > 0)
        {
            _teacher.Encoder.RecordHiddenStates = true;
            _student.Encoder.RecordHiddenStates = true;
        }
        if (options.AttentionWeight > 0)
        {
            _teacher.Encoder.RecordAttentions = true;
            _student.Encoder.RecordAttentions = true;
        }
    }

    /// <summary>Teacher hidden-state index (0 = embeddings) for the embeddings and each student layer.</summary>
    internal static int[] LayerMap(int[]? mapping, int studentLayers, int teacherLayers)
    {
        if (mapping is not null)
        {
            if (mapping.Length != studentLayers)
                throw new ArgumentException($"LayerMapping has {mapping.Length} entries but the student has {studentLayers} layers.", "LayerMapping");
            if (mapping.Any(l => l > teacherLayers))
                throw new ArgumentException($"LayerMapping names teacher layer {mapping.Max()} but the teacher has {teacherLayers} layers.", "LayerMapping");
            return new[] { 0 }.Concat(mapping).ToArray();
        }
        // Embeddings to embeddings; student layer i to teacher layer ⌊i·T/S⌋, at least layer 1 when the student is the deeper one.
        return Enumerable.Range(0, studentLayers + 1).Select(i => i == 0 ? 0 : Math.Max(1, i * teacherLayers / studentLayers)).ToArray();
    }

    public Batch BeforeStudent(Batch batch)
    {
        _lastInput = _augmenter is null ? batch.Inputs[0] : _augmenter.Apply(batch.Inputs[0]);
        return _augmenter is null ? batch : new Batch(new[] { _lastInput }, batch.Targets, batch.Count);
    }

    public TeacherGuidance Teach(ITrainingTask student, Batch batch)
    {
        var input = _lastInput ?? batch.Inputs[0];
        Tensor logits;
        using (torch.no_grad())
            logits = _binding.ToStudentOrder(_teacher.call(input));
        var extra = torch.zeros(1, device: logits.device).squeeze();
        var attentionMask = TextClassifierNetwork.Unpack(input).AttentionMask;
        if (_options.HiddenStateWeight > 0)
            extra = extra + _options.HiddenStateWeight * HiddenStateLoss(attentionMask);
        if (_options.AttentionWeight > 0)
            extra = extra + _options.AttentionWeight * AttentionLoss(attentionMask);
        return new TeacherGuidance(logits, extra);
    }

    /// <summary>
    /// Mean over student layers of the squared difference between head-averaged attention maps (student layer i against its mapped
    /// teacher layer), summed over keys and averaged over real query tokens. Averaging over heads lets head counts differ.
    /// </summary>
    private Tensor AttentionLoss(Tensor attentionMask)
    {
        var studentMaps = _student.Encoder.LastAttentions;
        var teacherMaps = _teacher.Encoder.LastAttentions;
        var queries = attentionMask.to(ScalarType.Float32).unsqueeze(-1); // [N, L, 1]
        var count = queries.sum().clamp_min(1);
        var total = torch.zeros(1, device: queries.device).squeeze();
        for (int i = 0; i < studentMaps.Count; i++)
        {
            var t = teacherMaps[_teacherLayerOf[i + 1] - 1].detach();
            total = total + ((studentMaps[i] - t).square() * queries).sum() / count;
        }
        return total / studentMaps.Count;
    }

    /// <summary>Mean over the mapped layer pairs of the mean squared error over real tokens.</summary>
    private Tensor HiddenStateLoss(Tensor attentionMask)
    {
        var studentStates = _student.Encoder.LastHiddenStates;
        var teacherStates = _teacher.Encoder.LastHiddenStates;
        var mask = attentionMask.to(ScalarType.Float32).unsqueeze(-1);
        var tokens = mask.sum().clamp_min(1);
        var total = torch.zeros(1, device: mask.device).squeeze();
        for (int i = 0; i < studentStates.Count; i++)
        {
            var s = _projection is null ? studentStates[i] : _projection.call(studentStates[i]);
            var t = teacherStates[_teacherLayerOf[i]].detach();
            total = total + ((s - t).square() * mask).sum() / (tokens * t.shape[2]);
        }
        return total / studentStates.Count;
    }

    public IReadOnlyList<Parameter> TrainableParameters() => _projection?.parameters().ToList() ?? new List<Parameter>();

    public IEnumerable<nn.Module> Networks => _projection is null ? new nn.Module[] { _teacher } : new nn.Module[] { _teacher, _projection };

    public void Dispose()
    {
        _teacher.Encoder.RecordHiddenStates = false;
        _student.Encoder.RecordHiddenStates = false;
        _teacher.Encoder.RecordAttentions = false;
        _student.Encoder.RecordAttentions = false;
        _teacher.to(CPU);
        _projection?.Dispose();
        _augmenter?.Dispose();
    }
}
