using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Core;
using MLExtensions.Multimodal;
using MLExtensions.Onnx.Export;
using MLExtensions.Tabular;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Onnx.Runtime;

/// <summary>
/// How an <see cref="OnnxNetworkTransformer"/> turns a row into the ONNX model's inputs: the same columns, checks and
/// conversions (pixel reading, WordPiece tokenization) as the TorchSharp transformer it replaces, without TorchSharp.
/// </summary>
internal abstract class NetworkInputReader
{
    private protected enum Kind
    {
        FeatureVector = 1,
        ImagePixels = 2,
        Text = 3,
        ClipText = 4,
    }

    /// <summary>The ONNX graph inputs this feeds.</summary>
    public abstract IReadOnlyList<string> OnnxInputNames { get; }

    /// <summary>The ML.NET columns read.</summary>
    public abstract IReadOnlyList<string> Columns { get; }

    /// <summary>Throws, naming the column, when <paramref name="schema"/> does not have what the network was trained on.</summary>
    public abstract void Validate(DataViewSchema schema);

    /// <summary>
    /// A per-cursor function returning the ONNX inputs (batch of one) for the cursor's current row. The returned values
    /// may reuse buffers between calls, so use them before calling again.
    /// </summary>
    public abstract Func<IReadOnlyList<NamedOnnxValue>> CreateReader(DataViewRow row);

    private protected abstract Kind InputKind { get; }

    private protected abstract void SaveCore(ModelSaveContext ctx);

    public void Save(ModelSaveContext ctx)
    {
        ctx.Writer.Write((int)InputKind);
        SaveCore(ctx);
    }

    /// <summary>The reader for the inputs of <paramref name="network"/>.</summary>
    public static NetworkInputReader For(NetworkTransformerBase network) => network switch
    {
        NeuralNetworkTransformer mlp => new FeatureVector(mlp.FeatureColumnName, mlp.FeatureSize),
        ImageClassifierTransformer image => new ImagePixels(image.Image with { PathColumnName = null }),
        TextClassifierTransformer text => new TextTokens(text.Columns, text.Tokenizer, text.MaxLength),
        ZeroShotImageClassifierTransformer zeroShot => new ImagePixels(zeroShot.Image with { PathColumnName = null }),
        _ => throw new NotSupportedException($"ONNX Runtime scoring does not support {network.GetType().Name}."),
    };

    /// <summary>The reader for any exportable step: a network (<see cref="For(NetworkTransformerBase)"/>) or an embedding transformer.</summary>
    public static NetworkInputReader ForStep(ITransformer step) => step switch
    {
        NetworkTransformerBase network => For(network),
        ClipEmbeddingTransformer { Image: { } image } => new ImagePixels(image with { PathColumnName = null }),
        ClipEmbeddingTransformer text => new ClipTokens(text.InputColumnName, text.Tokenizer),
        ImageTextEncoderTransformer lit => new ImagePixels(lit.Image with { PathColumnName = null }),
        SentenceEmbeddingTransformer sentence => new TextTokens(new TextColumns(sentence.InputColumnName, null), sentence.Tokenizer, sentence.Options.MaxLength),
        _ => throw new NotSupportedException($"ONNX Runtime scoring does not support {step.GetType().Name}."),
    };

    public static NetworkInputReader Load(ModelLoadContext ctx)
    {
        var reader = ctx.Reader;
        var kind = (Kind)reader.ReadInt32();
        switch (kind)
        {
            case Kind.FeatureVector:
            {
                string column = reader.ReadString();
                int size = reader.ReadInt32();
                if (size < 1)
                    throw new InvalidDataException($"The ONNX network in the model file is corrupted: feature size {size}.");
                return new FeatureVector(column, size);
            }
            case Kind.ImagePixels:
            {
                string column = reader.ReadString();
                var imageKind = (ImageColumnKind)reader.ReadInt32();
                int channels = reader.ReadInt32(), height = reader.ReadInt32(), width = reader.ReadInt32();
                if (!Enum.IsDefined(imageKind) || channels is not (1 or 3) || height < 1 || width < 1)
                    throw new InvalidDataException("The ONNX network in the model file is corrupted (invalid image shape).");
                return new ImagePixels(new ImageInput(column, imageKind, channels, height, width, null));
            }
            case Kind.Text:
            {
                string text = reader.ReadString();
                string second = reader.ReadString();
                int maxLength = reader.ReadInt32();
                int vocabularySize = reader.ReadInt32();
                if (maxLength < 2 || vocabularySize < 1)
                    throw new InvalidDataException($"The ONNX network in the model file is corrupted: max length {maxLength}, vocabulary size {vocabularySize}.");
                var tokenizer = TokenizerPersistence.Load(ctx, vocabularySize, "ONNX text classifier");
                return new TextTokens(new TextColumns(text, second.Length == 0 ? null : second), tokenizer, maxLength);
            }
            case Kind.ClipText:
                return new ClipTokens(reader.ReadString(), ClipPersistence.LoadTokenizer(ctx, "ONNX CLIP text embedding"));
            default:
                throw new InvalidDataException($"The ONNX network in the model file is corrupted: unknown input kind {(int)kind}.");
        }
    }

    /// <summary>Base of the inputs that are one float vector per row.</summary>
    private abstract class FloatVector : NetworkInputReader
    {
        protected abstract string OnnxInputName { get; }

        protected abstract int Size { get; }

        public override IReadOnlyList<string> OnnxInputNames => new[] { OnnxInputName };

        protected abstract Action<Span<float>> CreateValueReader(DataViewRow row);

        public override Func<IReadOnlyList<NamedOnnxValue>> CreateReader(DataViewRow row)
        {
            var read = CreateValueReader(row);
            var buffer = new float[Size];
            // The tensor wraps the buffer, so refilling the buffer is all a new row needs.
            var inputs = new[] { NamedOnnxValue.CreateFromTensor(OnnxInputName, new DenseTensor<float>(buffer, new[] { 1, Size })) };
            return () =>
            {
                read(buffer);
                return inputs;
            };
        }
    }

    /// <summary>A float feature vector column (the MLP's input).</summary>
    private sealed class FeatureVector : FloatVector
    {
        private readonly string _column;
        private readonly int _size;

        public FeatureVector(string column, int size)
        {
            _column = column;
            _size = size;
        }

        protected override string OnnxInputName => "features";

        protected override int Size => _size;

        public override IReadOnlyList<string> Columns => new[] { _column };

        private protected override Kind InputKind => Kind.FeatureVector;

        public override void Validate(DataViewSchema schema) => FeatureVectorRowReader.ValidateFeatureColumn(schema, _column, _size);

        protected override Action<Span<float>> CreateValueReader(DataViewRow row)
        {
            var getter = row.GetGetter<VBuffer<float>>(row.Schema[_column]);
            VBuffer<float> features = default;
            return span =>
            {
                getter(ref features);
                features.CopyTo(span);
            };
        }

        private protected override void SaveCore(ModelSaveContext ctx)
        {
            ctx.Writer.Write(_column);
            ctx.Writer.Write(_size);
        }
    }

    /// <summary>An image column (pixel vector or MLImage) read exactly as the image classifier reads it.</summary>
    private sealed class ImagePixels : FloatVector
    {
        private readonly ImageInput _image;

        public ImagePixels(ImageInput image) => _image = image;

        protected override string OnnxInputName => "pixels";

        protected override int Size => _image.Size;

        public override IReadOnlyList<string> Columns => new[] { _image.ColumnName };

        private protected override Kind InputKind => Kind.ImagePixels;

        public override void Validate(DataViewSchema schema) => _image.Validate(schema);

        protected override Action<Span<float>> CreateValueReader(DataViewRow row) => _image.CreateReader(row);

        private protected override void SaveCore(ModelSaveContext ctx)
        {
            ctx.Writer.Write(_image.ColumnName);
            ctx.Writer.Write((int)_image.Kind);
            ctx.Writer.Write(_image.Channels);
            ctx.Writer.Write(_image.Height);
            ctx.Writer.Write(_image.Width);
        }
    }

    /// <summary>One or two text columns, tokenized with the classifier's WordPiece tokenizer and maximum length.</summary>
    private sealed class TextTokens : NetworkInputReader
    {
        private readonly TextColumns _columns;
        private readonly WordPieceTokenizer _tokenizer;
        private readonly int _maxLength;

        public TextTokens(TextColumns columns, WordPieceTokenizer tokenizer, int maxLength)
        {
            _columns = columns;
            _tokenizer = tokenizer;
            _maxLength = maxLength;
        }

        public override IReadOnlyList<string> OnnxInputNames =>
            new[] { ExportedNetwork.TokenIdsName, ExportedNetwork.AttentionMaskName, ExportedNetwork.TokenTypeIdsName };

        public override IReadOnlyList<string> Columns =>
            _columns.SecondTextColumnName is null ? new[] { _columns.TextColumnName } : new[] { _columns.TextColumnName, _columns.SecondTextColumnName };

        private protected override Kind InputKind => Kind.Text;

        public override void Validate(DataViewSchema schema) => _columns.Validate(schema);

        public override Func<IReadOnlyList<NamedOnnxValue>> CreateReader(DataViewRow row)
        {
            var tokenize = _columns.CreateTokenizer(row, _tokenizer, _maxLength);
            return () =>
            {
                // One row: no padding, so the mask is all ones.
                var tokens = tokenize();
                var shape = new[] { 1, tokens.Length };
                var ids = new DenseTensor<long>(tokens.Ids.Select(i => (long)i).ToArray(), shape);
                var mask = new DenseTensor<long>(Enumerable.Repeat(1L, tokens.Length).ToArray(), shape);
                var types = new DenseTensor<long>(tokens.TypeIds.Select(i => (long)i).ToArray(), shape);
                return new[]
                {
                    NamedOnnxValue.CreateFromTensor(ExportedNetwork.TokenIdsName, ids),
                    NamedOnnxValue.CreateFromTensor(ExportedNetwork.AttentionMaskName, mask),
                    NamedOnnxValue.CreateFromTensor(ExportedNetwork.TokenTypeIdsName, types),
                };
            };
        }

        private protected override void SaveCore(ModelSaveContext ctx)
        {
            ctx.Writer.Write(_columns.TextColumnName);
            ctx.Writer.Write(_columns.SecondTextColumnName ?? "");
            ctx.Writer.Write(_maxLength);
            ctx.Writer.Write(_tokenizer.Vocabulary.Count);
            TokenizerPersistence.Save(ctx, _tokenizer);
        }
    }

    /// <summary>A text column tokenized with CLIP's BPE tokenizer, cut after the end token (the causal tower never looks past it).</summary>
    private sealed class ClipTokens : NetworkInputReader
    {
        private readonly string _column;
        private readonly ClipTokenizer _tokenizer;

        public ClipTokens(string column, ClipTokenizer tokenizer)
        {
            _column = column;
            _tokenizer = tokenizer;
        }

        public override IReadOnlyList<string> OnnxInputNames => new[] { ExportedNetwork.TokenIdsName };

        public override IReadOnlyList<string> Columns => new[] { _column };

        private protected override Kind InputKind => Kind.ClipText;

        public override void Validate(DataViewSchema schema) => new TextColumns(_column, null).Validate(schema);

        public override Func<IReadOnlyList<NamedOnnxValue>> CreateReader(DataViewRow row)
        {
            var getText = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[_column]);
            ReadOnlyMemory<char> text = default;
            return () =>
            {
                getText(ref text);
                var ids = _tokenizer.Encode(text.ToString());
                int length = Array.IndexOf(ids, (long)_tokenizer.EndOfTextId) + 1;
                var tensor = new DenseTensor<long>(ids.AsMemory(0, length), new[] { 1, length });
                return new[] { NamedOnnxValue.CreateFromTensor(ExportedNetwork.TokenIdsName, tensor) };
            };
        }

        private protected override void SaveCore(ModelSaveContext ctx)
        {
            ctx.Writer.Write(_column);
            ClipPersistence.SaveTokenizer(ctx, _tokenizer);
        }
    }
}
