using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Distillation;

/// <summary>
/// Options of the <c>Distill</c> trainers: which student to train (its own trainer options) and how the teacher teaches it.
/// </summary>
/// <remarks>
/// The loss is <c>Alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − Alpha) · cross-entropy(student, label)</c>.
/// The T² factor keeps the soft term's gradients on the scale of the hard term whatever the temperature (Hinton et al. 2015).
/// </remarks>
public sealed class DistillationOptions
{
    /// <summary>
    /// The student and how it trains: <see cref="NeuralNetworkOptions"/> (an MLP on a feature vector),
    /// <see cref="ImageClassifierOptions"/> (a CNN; multiclass only) or <see cref="TextClassifierOptions"/> (a transformer encoder, e.g.
    /// <see cref="TextEncoderSource.Scratch"/> with a small <see cref="BertConfig"/>). Its label, input columns, epochs, optimizer,
    /// validation, progress and cancellation settings apply as in ordinary training. Null (the default) chooses the student from the
    /// teacher and the data and logs the choice: the input column is the teacher's own when the teacher is a network of this library,
    /// else <c>Features</c>; a numeric feature vector gets <see cref="NeuralNetworkOptions"/> defaults, an image column a LeNet-5 with
    /// the teacher's image settings, a text column the 2 × 128 transformer student of the distillation benchmark's best recipe
    /// (docs/distillation.md, "Default students").
    /// </summary>
    public NetworkTrainerOptions? Student { get; set; }

    /// <summary>Softmax temperature T &gt; 0 for the soft targets; higher values expose more of the teacher's "dark knowledge". Default 2.</summary>
    public double Temperature { get; set; } = 2.0;

    /// <summary>Weight of the soft (teacher) term in [0, 1]; 1 − Alpha weighs the label's cross-entropy. Default 0.5.</summary>
    public double Alpha { get; set; } = 0.5;

    /// <summary>The teacher's score column. Default "Score".</summary>
    public string TeacherScoreColumnName { get; set; } = "Score";

    /// <summary>
    /// For binary teachers that are not networks of this library: the calibrated probability column whose log-odds serve as
    /// the teacher's logit; when absent, Score is taken as the logit. Default "Probability".
    /// </summary>
    public string TeacherProbabilityColumnName { get; set; } = "Probability";

    /// <summary>
    /// Image students with augmentation: run the teacher (an image classifier of this library reading the same image column) on
    /// each augmented batch instead of using its cached outputs for the original image, so the soft targets describe what the student
    /// sees. Costs one teacher forward pass per batch. Default false.
    /// </summary>
    public bool TeacherSeesAugmentedImages { get; set; }

    /// <summary>Extra ways to transfer knowledge between transformer encoders (text students with a text classifier teacher of this library).</summary>
    public TextDistillationOptions Text { get; set; } = new();

    /// <summary>A copy with another student and text-transfer options (the other settings shared), for a default student.</summary>
    internal DistillationOptions With(NetworkTrainerOptions student, TextDistillationOptions text) => new()
    {
        Student = student,
        Temperature = Temperature,
        Alpha = Alpha,
        TeacherScoreColumnName = TeacherScoreColumnName,
        TeacherProbabilityColumnName = TeacherProbabilityColumnName,
        TeacherSeesAugmentedImages = TeacherSeesAugmentedImages,
        Text = text,
    };

    /// <summary>
    /// Checks every setting; throws <see cref="ArgumentException"/> or <see cref="ArgumentOutOfRangeException"/> naming it. A null
    /// <see cref="Student"/> is valid: the trainer chooses one when it sees the data.
    /// </summary>
    public void Validate()
    {
        if (Student is not null and not (NeuralNetworkOptions or ImageClassifierOptions or TextClassifierOptions))
            throw new ArgumentException($"DistillationOptions.Student has type {Student.GetType().Name}; use NeuralNetworkOptions, ImageClassifierOptions or TextClassifierOptions.", nameof(Student));
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, $"Temperature must be a finite number > 0; found {Temperature}.");
        if (!(Alpha >= 0 && Alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, $"Alpha must be in [0, 1]; found {Alpha}.");
        Check.NotEmpty(TeacherScoreColumnName, nameof(TeacherScoreColumnName));
        ArgumentNullException.ThrowIfNull(Text, nameof(Text));
        Text.Validate();
        Student?.Validate();
        if (Text.AddsSentenceRows && Student is not null)
        {
            if (Student is not TextClassifierOptions text)
                throw new ArgumentException(
                    "AddSentences, AddLeaveOneSentenceOut and RecombinedSentenceRows need a TextClassifierOptions student: they add rows of its text column.", nameof(Student));
            if (text.SecondTextColumnName is not null)
                throw new ArgumentException(
                    $"AddSentences, AddLeaveOneSentenceOut and RecombinedSentenceRows work on single texts; the student reads text pairs ('{text.TextColumnName}', '{text.SecondTextColumnName}').", nameof(Student));
        }
    }
}

/// <summary>
/// Knowledge transfer between a text classifier teacher of this library and a transformer-encoder student beyond the logits:
/// intermediate layers, initialisation from the teacher and augmentation of the transfer set.
/// </summary>
/// <remarks>
/// Any of these makes the teacher run on every training batch (in evaluation mode, without gradients) because its hidden states,
/// or its outputs for the augmented text, cannot be cached cheaply.
/// </remarks>
public sealed class TextDistillationOptions
{
    /// <summary>
    /// Weight of the hidden-state loss: mean squared error between each student layer's output (through a learned linear projection
    /// when the widths differ) and the mapped teacher layer's output, over real tokens. 0 turns it off. Default 0.
    /// </summary>
    public double HiddenStateWeight { get; set; }

    /// <summary>
    /// Weight of the attention loss: mean squared error between the student's and the mapped teacher layer's attention probabilities
    /// averaged over heads (so head counts may differ), over real query tokens. 0 turns it off. Default 0.
    /// </summary>
    public double AttentionWeight { get; set; }

    /// <summary>
    /// Teacher layer (1-based) matched to each student layer; null spreads them uniformly (student layer i ↔ teacher layer
    /// i · teacherLayers / studentLayers, as TinyBERT does). Default null.
    /// </summary>
    public int[]? LayerMapping { get; set; }

    /// <summary>
    /// Initialise the student's encoder from the teacher's: embeddings, and the mapped layers, where the shapes match (same width,
    /// heads and feed-forward size); when only the vocabulary matches and the student is narrower, the word embeddings are the
    /// teacher's projected onto their top principal directions. Default false.
    /// </summary>
    public bool InitializeFromTeacher { get; set; }

    /// <summary>Probability that a real word piece of a training text is replaced by [MASK] (transfer-set augmentation). Default 0.</summary>
    public double TokenMaskingProbability { get; set; }

    /// <summary>
    /// Probability that a real word piece of a training text is replaced by another word piece: any word piece, or with
    /// <see cref="ReplacementNeighbours"/> &gt; 0 one of its nearest neighbours. Default 0.
    /// </summary>
    public double TokenReplacementProbability { get; set; }

    /// <summary>
    /// When &gt; 0, a replaced word piece becomes one of its this many nearest word pieces (cosine similarity of the teacher's word
    /// embeddings; special and [unused] pieces never), picked uniformly, so the altered text stays close to real text and the
    /// student learns how the teacher treats similar words it may never see in the training data (TinyBERT's augmentation uses
    /// 15 candidates). 0 replaces by any word piece. Default 0.
    /// </summary>
    public int ReplacementNeighbours { get; set; }

    /// <summary>
    /// Probability that a training text is cut to a random contiguous span of its word pieces (length uniform between one piece and
    /// all of them) before masking and replacement; the teacher scores the span. Short spans teach what single phrases mean to the
    /// teacher (n-gram sampling, Tang et al. 2019). Texts with a second segment are never cut. Default 0.
    /// </summary>
    public double SpanSamplingProbability { get; set; }

    /// <summary>
    /// Add each sentence, and each pair of adjacent sentences, of every training text with two or more sentences as an unlabeled
    /// row that only the teacher scores (once, with the other rows). Sentences are split after '.', '!' or '?' and at HTML line
    /// breaks, and kept when they have three or more words. Works with any teacher that reads the student's text column; the
    /// added rows share the other columns of their source row. Default false.
    /// </summary>
    /// <remarks>
    /// This and the two options below grow the transfer set with real language only, which on a few thousand reviews did more for
    /// the student than token masking or replacement (docs/distillation.md). A validation hold-out is taken before rows are
    /// added, so no sentence of a validation text is trained on.
    /// </remarks>
    public bool AddSentences { get; set; }

    /// <summary>Add each training text of three or more sentences with one sentence, picked at random, left out. Default false.</summary>
    public bool AddLeaveOneSentenceOut { get; set; }

    /// <summary>
    /// Add this many unlabeled texts, each joined from two to four sentences drawn at random from the training texts: new
    /// combinations of real sentences, often of mixed sentiment, that teach how the teacher weighs one part of a text against
    /// another. Default 0.
    /// </summary>
    public int RecombinedSentenceRows { get; set; }

    /// <summary>Whether unlabeled rows made of the training texts' sentences are added before the teacher pass.</summary>
    internal bool AddsSentenceRows => AddSentences || AddLeaveOneSentenceOut || RecombinedSentenceRows > 0;

    /// <summary>Whether the teacher has to run on every batch.</summary>
    internal bool NeedsOnlineTeacher => HiddenStateWeight > 0 || AttentionWeight > 0 || Augments;

    /// <summary>Whether the transfer set is augmented.</summary>
    internal bool Augments => TokenMaskingProbability > 0 || TokenReplacementProbability > 0 || SpanSamplingProbability > 0;

    /// <summary>Checks every setting.</summary>
    public void Validate()
    {
        Check.InRange(HiddenStateWeight, 0, double.MaxValue, nameof(HiddenStateWeight), "≥ 0");
        Check.InRange(AttentionWeight, 0, double.MaxValue, nameof(AttentionWeight), "≥ 0");
        Check.InRange(TokenMaskingProbability, 0, 1, nameof(TokenMaskingProbability), "in [0, 1]");
        Check.InRange(TokenReplacementProbability, 0, 1, nameof(TokenReplacementProbability), "in [0, 1]");
        Check.InRange(SpanSamplingProbability, 0, 1, nameof(SpanSamplingProbability), "in [0, 1]");
        if (RecombinedSentenceRows < 0)
            throw new ArgumentOutOfRangeException(nameof(RecombinedSentenceRows), RecombinedSentenceRows, $"RecombinedSentenceRows must be ≥ 0; found {RecombinedSentenceRows}.");
        if (ReplacementNeighbours < 0)
            throw new ArgumentOutOfRangeException(nameof(ReplacementNeighbours), ReplacementNeighbours, $"ReplacementNeighbours must be ≥ 0; found {ReplacementNeighbours}.");
        if (TokenMaskingProbability + TokenReplacementProbability > 1)
            throw new ArgumentOutOfRangeException(nameof(TokenReplacementProbability), TokenReplacementProbability,
                $"TokenMaskingProbability + TokenReplacementProbability must be ≤ 1; found {TokenMaskingProbability + TokenReplacementProbability}.");
        if (LayerMapping is { } map && map.Any(l => l < 1))
            throw new ArgumentOutOfRangeException(nameof(LayerMapping), string.Join(", ", map), "LayerMapping holds 1-based teacher layer numbers; found a value below 1.");
    }
}
