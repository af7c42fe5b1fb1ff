using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Distillation;
using MLExtensions.Text;

namespace MLExtensions.Benchmarks;

/// <summary>
/// The text students of the distill benchmark, by variant name. Every variant trains the same student shape with the same
/// settings from the command line; they differ in what teaches it.
/// </summary>
internal sealed class TextStudents
{
    /// <summary>Variant names accepted by <see cref="Train"/>.</summary>
    public const string VariantNames = "labels, logits, full, augmented, sentences or recombined";

    private readonly MLContext _ml;
    private readonly BenchmarkArguments _arguments;
    private readonly ITransformer _teacher;
    private readonly IProgress<TrainingProgress> _progress;
    private readonly TextWriter _output;
    private readonly int _seed;
    private readonly double _temperature;
    private readonly double _alpha;
    private readonly int _layers;
    private readonly int _width;
    private readonly int _rank;
    private long _lastRowsScored;

    public TextStudents(MLContext ml, BenchmarkArguments arguments, ITransformer teacher, IProgress<TrainingProgress> progress, TextWriter output, int seed)
    {
        _ml = ml;
        _arguments = arguments;
        _teacher = teacher;
        _progress = progress;
        _output = output;
        _seed = seed;
        _temperature = arguments.OptionalPositiveDouble("temperature") ?? 2;
        _alpha = arguments.OptionalNonNegativeDouble("alpha") ?? 0.7;
        _layers = arguments.Int("student-layers", 2);
        _width = arguments.Int("student-width", 128);
        _rank = arguments.Int("student-embedding-rank", 0);
        Shape = $"{_layers} × {_width}" + (_rank > 0 ? $", word rank {_rank}" : "")
            + (arguments.OptionalInt("student-max-length") is int length ? $", {length} pieces" : "")
            + (arguments.Flag("student-prune") ? ", pruned vocabulary" + (arguments.Int("student-keep-first", 0, minimum: 0) is int floor and > 0 ? $" (+ first {floor:N0} pieces)" : "") : "");
    }

    /// <summary>Layers × width (and the options that change the shape), for the results table.</summary>
    public string Shape { get; }

    /// <summary>Trains one variant on the training reviews; returns its name for the table and the fitted student.</summary>
    public (string Name, ITransformer Model) Train(string variant, IReadOnlyList<FineFoodReviews.Row> trainRows, IDataView train) => variant switch
    {
        "labels" => ($"Student {Shape}, labels only", _ml.BinaryClassification.Trainers.TextClassifier(Options()).Fit(train)),
        "logits" => ($"Student {Shape}, distilled (logits, T = {_temperature}, α = {_alpha})", Distill(Distillation(), train)),
        "full" => ($"Student {Shape}, distilled (logits + hidden states + init + token augmentation)", Distill(Full(), train)),
        "augmented" => Augmented(train),
        "sentences" => Sentences(trainRows, recombine: false),
        "recombined" => Sentences(trainRows, recombine: true),
        _ => throw new ArgumentException($"Unknown variant '{variant}' in --variants; use {VariantNames}."),
    };

    /// <summary>The student trainer's options: a scratch encoder of the chosen shape, the same for every variant.</summary>
    private TextClassifierOptions Options()
    {
        var a = _arguments;
        double dropout = a.OptionalNonNegativeDouble("student-dropout") ?? 0.1;
        return new TextClassifierOptions
        {
            Encoder = TextEncoderSource.Scratch,
            ScratchConfig = new BertConfig
            {
                Layers = _layers, HiddenSize = _width, Heads = Math.Max(1, _width / 32), IntermediateSize = 4 * _width, MaxPositions = 512,
                PositionEncoding = PositionEncoding.Learned, WordEmbeddingRank = _rank,
                HiddenDropout = dropout, AttentionDropout = dropout,
            },
            MaxLength = a.Int("student-max-length", 128),
            BatchSize = 32,
            FreezeEmbeddings = a.Flag("student-freeze-embeddings"),
            VocabularyPruning = { Enabled = a.Flag("student-prune"), KeepFirstPieces = a.Int("student-keep-first", 0, minimum: 0) },
            Epochs = a.Int("student-epochs", 8),
            Seed = _seed,
            Optimizer = { LearningRate = a.OptionalPositiveDouble("student-lr") ?? 1e-3, WeightDecay = a.OptionalNonNegativeDouble("student-weight-decay") ?? 1e-4 },
            // Never stop early: every variant gets the same epochs. The best epoch on validation is kept unless --student-keep-last.
            EarlyStopping = { Patience = 100, RestoreBestWeights = !a.Flag("student-keep-last") },
            Progress = _progress,
            ProgressInterval = 20,
        };
    }

    private DistillationOptions Distillation(double? alpha = null) =>
        new() { Student = Options(), Temperature = _temperature, Alpha = alpha ?? _alpha };

    private ITransformer Distill(DistillationOptions options, IDataView train)
    {
        var trainer = _ml.BinaryClassification.Trainers.Distill(_teacher, options);
        var model = trainer.Fit(train);
        _output.WriteLine($"  {trainer.LastReport}");
        _lastRowsScored = trainer.LastReport!.RowsScored;
        return model;
    }

    /// <summary>Everything of session 2's recipe: initialised from the teacher, hidden-state loss, random token masking/replacement.</summary>
    private DistillationOptions Full()
    {
        var options = Distillation();
        options.Text = new TextDistillationOptions { HiddenStateWeight = 1, InitializeFromTeacher = true, TokenMaskingProbability = 0.1, TokenReplacementProbability = 0.1 };
        return options;
    }

    /// <summary>
    /// Logits from the teacher on an augmented transfer set (TinyBERT's nearest-neighbour replacement, span sampling, masking),
    /// initialised from the teacher; every setting from the command line.
    /// </summary>
    private (string, ITransformer) Augmented(IDataView train)
    {
        var a = _arguments;
        var options = Distillation(a.OptionalNonNegativeDouble("augment-alpha") ?? 0.9);
        var t = options.Text = new TextDistillationOptions
        {
            InitializeFromTeacher = true,
            HiddenStateWeight = a.OptionalNonNegativeDouble("augment-hidden") ?? 0,
            TokenMaskingProbability = a.OptionalNonNegativeDouble("augment-mask") ?? 0.1,
            TokenReplacementProbability = a.OptionalNonNegativeDouble("augment-replace") ?? 0.3,
            ReplacementNeighbours = a.Int("augment-neighbours", 15, minimum: 0),
            SpanSamplingProbability = a.OptionalNonNegativeDouble("augment-span") ?? 0.25,
        };
        string name = $"Student {Shape}, distilled (logits, T = {_temperature}, α = {options.Alpha}, init, augmented: mask {t.TokenMaskingProbability}, " +
            $"replace {t.TokenReplacementProbability} by {(t.ReplacementNeighbours > 0 ? $"{t.ReplacementNeighbours} nearest" : "any")}, span {t.SpanSamplingProbability}" +
            (t.HiddenStateWeight > 0 ? $", hidden states × {t.HiddenStateWeight}" : "") + (a.Flag("student-freeze-embeddings") ? ", embeddings frozen" : "") + ")";
        return (name, Distill(options, train));
    }

    /// <summary>
    /// Logits from the teacher on the labeled reviews plus unlabeled rows made of their sentences
    /// (<see cref="TextDistillationOptions.AddSentences"/>); with <paramref name="recombine"/> also each review with one sentence
    /// left out and <c>--recombined-rows</c> texts joined from sentences of different reviews (30,000 by default).
    /// </summary>
    private (string, ITransformer) Sentences(IReadOnlyList<FineFoodReviews.Row> trainRows, bool recombine)
    {
        var (labeled, validation) = ReviewSplit.Split(trainRows, _seed);
        var options = Distillation();
        options.Student!.ValidationData = _ml.Data.LoadFromEnumerable(validation);
        options.Text = new TextDistillationOptions
        {
            AddSentences = true,
            AddLeaveOneSentenceOut = recombine,
            RecombinedSentenceRows = recombine ? _arguments.Int("recombined-rows", 30_000, minimum: 0) : 0,
            InitializeFromTeacher = _arguments.Flag("student-init"),
        };
        _output.WriteLine($"  transfer set: {labeled.Count:N0} labeled reviews; validation {validation.Count:N0} reviews");
        var model = Distill(options, _ml.Data.LoadFromEnumerable(labeled));
        long added = _lastRowsScored - labeled.Count;
        string name = $"Student {Shape}, distilled (logits, T = {_temperature}, α = {_alpha}, + {added:N0} unlabeled rows: sentences and pairs"
            + (recombine ? $", one sentence left out, {options.Text.RecombinedSentenceRows:N0} recombined" : "")
            + (options.Text.InitializeFromTeacher ? ", initialised from the teacher)" : ")");
        return (name, model);
    }
}
