using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Distillation;

/// <summary>Checks and builds what the options ask beyond cached logits: a teacher run per batch, and student initialisation.</summary>
internal static class OnlineTeachers
{
    /// <summary>Fails early, before the teacher pass, when the options ask for something the teacher or student cannot do.</summary>
    public static void Validate(TeacherBinding teacher, DistillationOptions options)
    {
        if (options.TeacherSeesAugmentedImages)
        {
            if (options.Student is not ImageClassifierOptions student || !student.Augmentation.Enabled)
                throw new ArgumentException("TeacherSeesAugmentedImages needs an ImageClassifierOptions student with augmentation enabled.", nameof(options));
            if (teacher.Network is not ImageClassifierTransformer image)
                throw new ArgumentException("TeacherSeesAugmentedImages needs a teacher that is an image classifier of this library (its network scores the augmented images).", nameof(options));
            if (image.Image.ColumnName != student.ImageColumnName
                || (student.ImageChannels, student.ImageHeight, student.ImageWidth) is (int c, int h, int w) && (c, h, w) != (image.Image.Channels, image.Image.Height, image.Image.Width))
                throw new ArgumentException(
                    $"TeacherSeesAugmentedImages needs teacher and student to read the same images: the teacher reads '{image.Image.ColumnName}' " +
                    $"({image.Image.Channels}×{image.Image.Height}×{image.Image.Width}), the student '{student.ImageColumnName}'.", nameof(options));
        }
        var text = options.Text;
        if (text.NeedsOnlineTeacher || text.InitializeFromTeacher)
        {
            if (options.Student is not TextClassifierOptions studentOptions)
                throw new ArgumentException("The Text distillation options need a TextClassifierOptions student.", nameof(options));
            // The teacher would run on (or be copied into) the student's token ids; a pruned student numbers them differently.
            if (studentOptions.VocabularyPruning.Enabled)
                throw new ArgumentException(
                    "The student's VocabularyPruning is enabled, which the Text options HiddenStateWeight, AttentionWeight, token augmentation and InitializeFromTeacher " +
                    "do not support (they need the teacher's and the student's token ids to be the same). Turn VocabularyPruning off, or distill from logits only " +
                    "(sentence rows are fine).", nameof(options));
            if (teacher.Network is not TextClassifierTransformer textTeacher)
                throw new ArgumentException("The Text distillation options (hidden states, initialisation, token augmentation) need a teacher that is a text classifier of this library.", nameof(options));
            if (text.ReplacementNeighbours > 0 && text.TokenReplacementProbability > 0)
                CheckNeighbourCount(textTeacher, text);
        }
    }

    public static IOnlineTeacher? Create(TeacherBinding teacher, DistillationOptions options, ITrainingTask student, TrainingContext context)
    {
        if (options.TeacherSeesAugmentedImages && teacher.Network is ImageClassifierTransformer image)
            return new AugmentedImageTeacher(image.Classifier, teacher, context.Device);
        if (options.Text.NeedsOnlineTeacher && teacher.Network is TextClassifierTransformer text && student.Network is TextClassifierNetwork studentNetwork)
        {
            CheckSameTokenizer(text, studentNetwork);
            var t = options.Text;
            var tokenizer = text.Tokenizer;
            var augmenter = t.Augments ? Augmenter(text, t, context.Generator) : null;
            return new TextEncoderTeacher(text.Classifier, studentNetwork, teacher, t, augmenter, context.Generator, context.Device);
        }
        return null;
    }

    public static void InitializeStudent(TeacherBinding teacher, DistillationOptions options, nn.Module<Tensor, Tensor> student, IChannel channel)
    {
        if (options.Text.InitializeFromTeacher && teacher.Network is TextClassifierTransformer text && student is TextClassifierNetwork studentNetwork)
            TeacherInitialization.Apply(text.Classifier, studentNetwork, options.Text.LayerMapping, channel);
    }

    private static TokenAugmenter Augmenter(TextClassifierTransformer teacher, TextDistillationOptions options, Generator generator)
    {
        var tokenizer = teacher.Tokenizer;
        var vocabulary = tokenizer.Vocabulary;
        NearestWordPieces? neighbours = null;
        if (options.ReplacementNeighbours > 0 && options.TokenReplacementProbability > 0)
            neighbours = new NearestWordPieces(teacher.Classifier.Encoder.WordEmbeddingTable, options.ReplacementNeighbours, BracketedPieces(vocabulary));
        var settings = new TokenAugmentation(options.TokenMaskingProbability, options.TokenReplacementProbability, options.SpanSamplingProbability);
        int maskId = options.TokenMaskingProbability > 0 ? IdOf(tokenizer, "[MASK]") : tokenizer.PadId;
        return new TokenAugmenter(settings, maskId, new[] { tokenizer.ClsId, tokenizer.SepId, tokenizer.PadId }, vocabulary.Count, neighbours, generator);
    }

    /// <summary>[CLS], [SEP], [MASK], [PAD], [UNK] and BERT's [unusedN] placeholders: no words to swap in.</summary>
    private static int[] BracketedPieces(IReadOnlyList<string> vocabulary) =>
        Enumerable.Range(0, vocabulary.Count).Where(i => vocabulary[i].StartsWith('[') && vocabulary[i].EndsWith(']')).ToArray();

    private static void CheckNeighbourCount(TextClassifierTransformer teacher, TextDistillationOptions options)
    {
        var vocabulary = teacher.Tokenizer.Vocabulary;
        int ordinary = vocabulary.Count - BracketedPieces(vocabulary).Length;
        if (options.ReplacementNeighbours >= ordinary)
            throw new ArgumentOutOfRangeException(nameof(options.ReplacementNeighbours), options.ReplacementNeighbours,
                $"ReplacementNeighbours must be below the number of ordinary word pieces in the teacher's vocabulary ({ordinary}); found {options.ReplacementNeighbours}.");
    }

    private static void CheckSameTokenizer(TextClassifierTransformer teacher, TextClassifierNetwork student)
    {
        int vocabulary = student.Encoder.Config.VocabSize;
        if (vocabulary != teacher.Tokenizer.Vocabulary.Count)
            throw new ArgumentException(
                $"The teacher runs on the student's token ids, so both need the same vocabulary; the teacher's has {teacher.Tokenizer.Vocabulary.Count} word pieces, the student's {vocabulary}.");
    }

    private static int IdOf(WordPieceTokenizer tokenizer, string token)
    {
        for (int i = 0; i < tokenizer.Vocabulary.Count; i++)
        {
            if (tokenizer.Vocabulary[i] == token)
                return i;
        }
        throw new ArgumentException($"Token masking needs a '{token}' token; the teacher's vocabulary has none.");
    }
}
