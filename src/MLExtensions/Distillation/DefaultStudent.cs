using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Distillation;

/// <summary>
/// The student trained when <see cref="DistillationOptions.Student"/> is null, chosen from the teacher and the data: the input
/// column is the teacher's own when the teacher is (or ends in) a network of this library, else <c>Features</c>; its kind picks
/// the student — a feature vector an MLP with <see cref="NeuralNetworkOptions"/> defaults, images a LeNet-5 with the teacher's
/// image settings, text the 2 × 128 transformer encoder of the distillation benchmark's best recipe.
/// </summary>
internal static class DefaultStudent
{
    /// <summary>Input column read when the teacher is not a network of this library (ML.NET's default feature column).</summary>
    internal const string DefaultInputColumn = "Features";

    /// <summary>Texts the recipe recombined from sentences of different reviews: 30,000 for its 3,600 training reviews.</summary>
    internal const int RecipeRecombinedRows = 30_000;

    /// <summary>Recombined texts per training row below the recipe's data size (30,000 / 3,600 ≈ 8), so small data is not swamped.</summary>
    internal const int RecombinedRowsPerTrainingRow = 8;

    /// <summary>The chosen student options, the text-transfer options to use with them, and a sentence saying why, for the log.</summary>
    internal sealed record Choice(NetworkTrainerOptions Student, TextDistillationOptions Text, string Reason);

    /// <summary>Chooses the student for <paramref name="teacher"/> and data of <paramref name="schema"/>.</summary>
    /// <param name="teacher">The fitted teacher.</param>
    /// <param name="schema">The training data's schema.</param>
    /// <param name="options">The distillation options.</param>
    /// <param name="trainingRows">Rows of the training data when known.</param>
    public static Choice Choose(ITransformer teacher, DataViewSchema schema, DistillationOptions options, long? trainingRows) =>
        Choose(teacher, SchemaShape.Create(schema), options, trainingRows);

    /// <summary>Chooses the student for <paramref name="teacher"/> and data of <paramref name="schema"/>.</summary>
    /// <param name="teacher">The fitted teacher (a network of this library, a chain ending in one, or any ML.NET classifier).</param>
    /// <param name="schema">The training data's schema.</param>
    /// <param name="options">The distillation options; their text-transfer settings are kept unless all are at their defaults.</param>
    /// <param name="trainingRows">Rows of the training data when known; scales the text recipe's recombined rows.</param>
    /// <exception cref="ArgumentException">The input column is missing or of a kind no student reads.</exception>
    public static Choice Choose(ITransformer teacher, SchemaShape schema, DistillationOptions options, long? trainingRows)
    {
        var network = TeacherBinding.FindNetwork(teacher).Network;
        string column = network?.NetworkInputColumns[0] ?? DefaultInputColumn;
        string whose = network is null
            ? $"the teacher ({TypeName(teacher)}) is not a network of this library, so the student reads '{DefaultInputColumn}'"
            : $"the teacher's network ({network.GetType().Name}) reads '{column}'";
        if (!schema.TryFindColumn(column, out var found))
            throw new ArgumentException(
                $"DistillationOptions.Student is null and no default student fits: {whose}, but the training data has no '{column}' column " +
                $"(its columns: {string.Join(", ", schema.Select(c => $"'{c.Name}'"))}). Set DistillationOptions.Student to the student's options " +
                "(NeuralNetworkOptions, ImageClassifierOptions or TextClassifierOptions) naming its input column.", nameof(options));

        return network switch
        {
            ImageClassifierTransformer image => ImageStudent(image, options),
            TextClassifierTransformer text => TextStudent(text.Columns, text.Tokenizer, options, trainingRows,
                $"the teacher is a text classifier reading '{column}'"),
            _ when found.Kind == SchemaShape.Column.VectorKind.Scalar && found.ItemType is TextDataViewType =>
                TextStudent(new TextColumns(column, null), null, options, trainingRows, $"{whose}, a text column"),
            _ when found.ItemType is ImageDataViewType && found.Kind == SchemaShape.Column.VectorKind.Scalar => new Choice(
                new ImageClassifierOptions { ImageColumnName = column, Architecture = ImageArchitecture.LeNet5 }, options.Text,
                $"{whose}, an image column: LeNet-5 student (ImageClassifierOptions defaults otherwise)"),
            _ when found.Kind != SchemaShape.Column.VectorKind.Scalar && found.ItemType is NumberDataViewType => new Choice(
                new NeuralNetworkOptions { FeatureColumnName = column }, options.Text,
                $"{whose}, a feature vector of {found.ItemType}: NeuralNetworkOptions defaults (MLP {string.Join(" × ", new NeuralNetworkOptions().HiddenLayers)})"),
            _ => throw new ArgumentException(
                $"DistillationOptions.Student is null and no default student fits: {whose}, whose type is {Describe(found)}; the default rule needs a " +
                "numeric feature vector, an image or a text column. Set DistillationOptions.Student to the student's options naming its input column.", nameof(options)),
        };
    }

    /// <summary>A LeNet-5 reading the teacher's image column with the teacher's channels, size, pixel scale and normalisation.</summary>
    private static Choice ImageStudent(ImageClassifierTransformer teacher, DistillationOptions options)
    {
        var input = teacher.Image;
        var t = teacher.Options;
        // Auto means ImageNet statistics for a pretrained teacher; a LeNet-5 has no pretrained weights, so say it explicitly.
        var normalization = t.Normalization == ImageNormalization.Auto
            ? (t.PretrainedWeights == PretrainedWeights.None ? ImageNormalization.Dataset : ImageNormalization.ImageNet)
            : t.Normalization;
        var student = new ImageClassifierOptions
        {
            LabelColumnName = t.LabelColumnName,
            ImageColumnName = input.ColumnName,
            ImageChannels = input.Channels,
            ImageHeight = input.Height,
            ImageWidth = input.Width,
            PixelScale = t.PixelScale,
            InputSize = t.InputSize,
            Normalization = normalization,
            Architecture = ImageArchitecture.LeNet5,
        };
        return new Choice(student, options.Text,
            $"the teacher is an image classifier reading '{input.ColumnName}' ({input.Channels} × {input.Height} × {input.Width}): LeNet-5 student " +
            $"with the teacher's image settings (normalisation {normalization}{(t.InputSize is int s ? $", input size {s}" : "")})");
    }

    /// <summary>
    /// The distillation benchmark's best text student (docs/distillation.md): a scratch 2 × 128 encoder (4 heads, 512 feed-forward,
    /// learned positions) on the teacher's vocabulary, 8 epochs at 1e-3 with weight decay 1e-4, last epoch kept, and a transfer set
    /// grown from the training texts' sentences (sentences and pairs, one sentence left out, recombined texts). The recipe did not
    /// initialise from the teacher (that run was no better), so neither does the default.
    /// </summary>
    private static Choice TextStudent(TextColumns columns, WordPieceTokenizer? vocabulary, DistillationOptions options, long? trainingRows, string why)
    {
        var config = BertConfig.Small(vocabulary?.Vocabulary.Count ?? new BertConfig().VocabSize, layers: 2, hidden: 128, heads: 4, maxPositions: 512);
        config.PositionEncoding = PositionEncoding.Learned;
        var student = new TextClassifierOptions
        {
            TextColumnName = columns.TextColumnName,
            SecondTextColumnName = columns.SecondTextColumnName,
            Encoder = TextEncoderSource.Scratch,
            ScratchConfig = config,
            ScratchVocabulary = vocabulary?.Vocabulary,
            ScratchLowerCase = vocabulary?.LowerCase ?? true,
            MaxLength = 128,
            BatchSize = 32,
            Epochs = 8,
            Optimizer = { LearningRate = 1e-3, WeightDecay = 1e-4 },
            // The recipe kept the last epoch: the best-epoch choice on a small validation tenth cost up to 2.3 points.
            EarlyStopping = { Enabled = false, RestoreBestWeights = false },
        };
        var text = options.Text;
        string transfer = "transfer options as given";
        if (IsDefault(text) && columns.SecondTextColumnName is null)
        {
            int recombined = trainingRows is long rows ? (int)Math.Min(RecipeRecombinedRows, RecombinedRowsPerTrainingRow * rows) : RecipeRecombinedRows;
            text = new TextDistillationOptions { AddSentences = true, AddLeaveOneSentenceOut = true, RecombinedSentenceRows = recombined };
            transfer = $"transfer set grown by sentences, pairs, one-sentence-left-out texts and {recombined:N0} recombined texts";
        }
        return new Choice(student, text, $"{why}: 2 × 128 transformer student ({(vocabulary is null ? "MiniLM's" : "the teacher's")} vocabulary, " +
            $"8 epochs, learning rate 1e-3, last epoch kept; {transfer})");
    }

    private static bool IsDefault(TextDistillationOptions t) =>
        t.HiddenStateWeight == 0 && t.AttentionWeight == 0 && t.LayerMapping is null && !t.InitializeFromTeacher && !t.Augments && !t.AddsSentenceRows
        && t.ReplacementNeighbours == 0;

    private static string Describe(SchemaShape.Column c) => c.Kind switch
    {
        SchemaShape.Column.VectorKind.Scalar => $"{c.ItemType}",
        SchemaShape.Column.VectorKind.Vector => $"Vector<{c.ItemType}>",
        _ => $"VarVector<{c.ItemType}>",
    };

    private static string TypeName(ITransformer teacher) =>
        teacher is IEnumerable<ITransformer> chain && chain.LastOrDefault() is { } last ? TypeName(last) : teacher.GetType().Name.Split('`')[0];
}
