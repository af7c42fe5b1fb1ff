using Microsoft.ML;
using Microsoft.ML.Data;
using MLExtensions.Core;
using MLExtensions.Tabular;
using MLExtensions.Vision;

namespace MLExtensions.Onnx.Runtime;

/// <summary>
/// How an <see cref="OnnxNetworkTransformer"/> turns a row into the float vector its ONNX model takes: the same
/// columns, checks and conversions as the TorchSharp transformer it replaces, without TorchSharp.
/// </summary>
internal abstract class NetworkInputReader
{
    private protected enum Kind
    {
        FeatureVector = 1,
        ImagePixels = 2,
    }

    /// <summary>The ONNX graph input this feeds.</summary>
    public abstract string OnnxInputName { get; }

    /// <summary>Floats per row.</summary>
    public abstract int Size { get; }

    /// <summary>The ML.NET columns read.</summary>
    public abstract IReadOnlyList<string> Columns { get; }

    /// <summary>Throws, naming the column, when <paramref name="schema"/> does not have what the network was trained on.</summary>
    public abstract void Validate(DataViewSchema schema);

    /// <summary>A per-cursor reader that writes the current row's values into a span of <see cref="Size"/> floats.</summary>
    public abstract Action<Span<float>> CreateReader(DataViewRow row);

    private protected abstract Kind InputKind { get; }

    private protected abstract void SaveCore(BinaryWriter writer);

    public void Save(BinaryWriter writer)
    {
        writer.Write((int)InputKind);
        SaveCore(writer);
    }

    /// <summary>The reader for the inputs of <paramref name="network"/>.</summary>
    public static NetworkInputReader For(NetworkTransformerBase network) => network switch
    {
        NeuralNetworkTransformer mlp => new FeatureVector(mlp.FeatureColumnName, mlp.FeatureSize),
        ImageClassifierTransformer image => new ImagePixels(image.Image with { PathColumnName = null }),
        _ => throw new NotSupportedException($"ONNX Runtime scoring does not support {network.GetType().Name} yet."),
    };

    public static NetworkInputReader Load(BinaryReader reader)
    {
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
            default:
                throw new InvalidDataException($"The ONNX network in the model file is corrupted: unknown input kind {(int)kind}.");
        }
    }

    /// <summary>A float feature vector column (the MLP's input).</summary>
    private sealed class FeatureVector : NetworkInputReader
    {
        private readonly string _column;

        public FeatureVector(string column, int size)
        {
            _column = column;
            Size = size;
        }

        public override string OnnxInputName => "features";

        public override int Size { get; }

        public override IReadOnlyList<string> Columns => new[] { _column };

        private protected override Kind InputKind => Kind.FeatureVector;

        public override void Validate(DataViewSchema schema) => FeatureVectorRowReader.ValidateFeatureColumn(schema, _column, Size);

        public override Action<Span<float>> CreateReader(DataViewRow row)
        {
            var getter = row.GetGetter<VBuffer<float>>(row.Schema[_column]);
            VBuffer<float> features = default;
            return span =>
            {
                getter(ref features);
                features.CopyTo(span);
            };
        }

        private protected override void SaveCore(BinaryWriter writer)
        {
            writer.Write(_column);
            writer.Write(Size);
        }
    }

    /// <summary>An image column (pixel vector or MLImage) read exactly as the image classifier reads it.</summary>
    private sealed class ImagePixels : NetworkInputReader
    {
        private readonly ImageInput _image;

        public ImagePixels(ImageInput image) => _image = image;

        public override string OnnxInputName => "pixels";

        public override int Size => _image.Size;

        public override IReadOnlyList<string> Columns => new[] { _image.ColumnName };

        private protected override Kind InputKind => Kind.ImagePixels;

        public override void Validate(DataViewSchema schema) => _image.Validate(schema);

        public override Action<Span<float>> CreateReader(DataViewRow row) => _image.CreateReader(row);

        private protected override void SaveCore(BinaryWriter writer)
        {
            writer.Write(_image.ColumnName);
            writer.Write((int)_image.Kind);
            writer.Write(_image.Channels);
            writer.Write(_image.Height);
            writer.Write(_image.Width);
        }
    }
}
