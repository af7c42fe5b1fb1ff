using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Core;

namespace MLExtensions.Vision;

/// <summary>The kinds of image column the classifier reads.</summary>
public enum ImageColumnKind
{
    /// <summary>An <c>MLImage</c> column (ImageAnalytics).</summary>
    MLImage,

    /// <summary>A vector of Single pixels, channel-major (C, H, W).</summary>
    SingleVector,

    /// <summary>A vector of Byte pixels, channel-major (C, H, W).</summary>
    ByteVector,
}

/// <summary>
/// A validated image column: its kind and the declared shape (channels, height, width). Creates per-cursor
/// readers that write one image as raw channel-major floats (bytes stay 0..255; scaling happens in the network).
/// </summary>
public sealed record ImageInput(string ColumnName, ImageColumnKind Kind, int Channels, int Height, int Width, string? PathColumnName)
{
    /// <summary>Floats per image.</summary>
    public int Size => Channels * Height * Width;

    /// <summary>Finds and checks the image column against the options.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Missing column, unsupported type, or a shape that does not match.</exception>
    public static ImageInput Bind(DataViewSchema schema, string column, int? channels, int? height, int? width, string? pathColumn)
    {
        var col = schema.GetColumnOrNull(column) ?? throw SchemaErrors.Missing("image", column, schema);
        if (pathColumn is not null && schema.GetColumnOrNull(pathColumn) is not { Type: TextDataViewType })
            throw new ArgumentOutOfRangeException("inputSchema", $"The image path column '{pathColumn}' must be a text column in the input data.");
        switch (col.Type)
        {
            case ImageDataViewType image:
            {
                int h = Declared(height, image.Height, column, "height");
                int w = Declared(width, image.Width, column, "width");
                return new ImageInput(column, ImageColumnKind.MLImage, channels ?? 3, h, w, pathColumn);
            }
            case VectorDataViewType vector when vector.ItemType == NumberDataViewType.Single || vector.ItemType == NumberDataViewType.Byte:
            {
                if (channels is null || height is null || width is null)
                    throw new ArgumentOutOfRangeException("inputSchema",
                        $"The image column '{column}' is a pixel vector ({col.Type}); set ImageChannels, ImageHeight and ImageWidth in the options to declare its shape.");
                int expected = channels.Value * height.Value * width.Value;
                if (!vector.IsKnownSize || vector.Size != expected)
                    throw new ArgumentOutOfRangeException("inputSchema",
                        $"The image column '{column}' must have {expected} values ({channels} × {height} × {width}); found {col.Type}.");
                var kind = vector.ItemType == NumberDataViewType.Byte ? ImageColumnKind.ByteVector : ImageColumnKind.SingleVector;
                return new ImageInput(column, kind, channels.Value, height.Value, width.Value, pathColumn);
            }
            default:
                throw SchemaErrors.WrongType("image", column, "an MLImage or a known-size vector of Single or Byte pixels", col.Type);
        }
    }

    /// <summary>Checks a later schema (validation data, prediction data) against this binding.</summary>
    public void Validate(DataViewSchema schema)
    {
        var other = Bind(schema, ColumnName, Channels, Height, Width, null);
        if (other.Kind != Kind)
            throw new ArgumentOutOfRangeException("inputSchema", $"The image column '{ColumnName}' must be {Describe(Kind)} as in training; found {Describe(other.Kind)}.");
    }

    private static string Describe(ImageColumnKind kind) => kind switch
    {
        ImageColumnKind.MLImage => "an MLImage column",
        ImageColumnKind.ByteVector => "a Byte pixel vector",
        _ => "a Single pixel vector",
    };

    private static int Declared(int? option, int fromType, string column, string what)
    {
        if (fromType > 0 && option is int o && o != fromType)
            throw new ArgumentOutOfRangeException("inputSchema", $"The image column '{column}' holds images of {what} {fromType}, but the options declare {o}.");
        if (fromType > 0)
            return fromType;
        return option ?? throw new ArgumentOutOfRangeException("inputSchema",
            $"The image column '{column}' does not declare its {what}; resize the images (mlContext.Transforms.ResizeImages) or set Image{char.ToUpperInvariant(what[0])}{what[1..]} in the options.");
    }

    /// <summary>A reader for the current row of <paramref name="row"/> that writes <see cref="Size"/> raw floats.</summary>
    /// <exception cref="ImageReadException">The image cannot be read or has the wrong size (names the row and, when known, the path).</exception>
    public Action<Span<float>> CreateReader(DataViewRow row)
    {
        var column = row.Schema[ColumnName];
        Func<string> where = PathColumnName is null
            ? () => $"row {row.Position}"
            : PathGetter(row);
        switch (Kind)
        {
            case ImageColumnKind.SingleVector:
            {
                var get = row.GetGetter<VBuffer<float>>(column);
                VBuffer<float> buffer = default;
                return span => { get(ref buffer); buffer.CopyTo(span); };
            }
            case ImageColumnKind.ByteVector:
            {
                var get = row.GetGetter<VBuffer<byte>>(column);
                VBuffer<byte> buffer = default;
                return span =>
                {
                    get(ref buffer);
                    int i = 0;
                    foreach (byte b in buffer.DenseValues())
                        span[i++] = b;
                };
            }
            default:
            {
                var get = row.GetGetter<MLImage>(column);
                MLImage image = null!;
                return span =>
                {
                    try
                    {
                        get(ref image);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        throw new ImageReadException($"The image in column '{ColumnName}' at {where()} could not be read: {e.Message}", e);
                    }
                    if (image is null)
                        throw new ImageReadException($"The image in column '{ColumnName}' at {where()} is missing or unreadable.");
                    if (image.Width != Width || image.Height != Height)
                        throw new ImageReadException($"The image in column '{ColumnName}' at {where()} is {image.Width}×{image.Height} pixels; expected {Width}×{Height} as declared. Resize images with mlContext.Transforms.ResizeImages.");
                    WritePixels(image, span);
                };
            }
        }
    }

    private Func<string> PathGetter(DataViewRow row)
    {
        var column = row.Schema[PathColumnName!];
        if (!row.IsColumnActive(column))
            return () => $"row {row.Position}";
        var get = row.GetGetter<ReadOnlyMemory<char>>(column);
        ReadOnlyMemory<char> path = default;
        return () =>
        {
            get(ref path);
            return $"row {row.Position} (path '{path}')";
        };
    }

    /// <summary>The columns a cursor must activate to read images (and their paths, for error messages).</summary>
    public IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema)
    {
        yield return schema[ColumnName];
        if (PathColumnName is not null && schema.GetColumnOrNull(PathColumnName) is DataViewSchema.Column path)
            yield return path;
    }

    /// <summary>Copies 4-byte pixels into channel planes: RGB, or luminance (ITU-R BT.601) for one channel.</summary>
    private void WritePixels(MLImage image, Span<float> span)
    {
        var pixels = image.Pixels;
        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        int r = bgra ? 2 : 0, g = 1, b = bgra ? 0 : 2;
        int plane = Height * Width;
        for (int p = 0; p < plane; p++)
        {
            int o = p * 4;
            if (Channels == 1)
            {
                span[p] = 0.299f * pixels[o + r] + 0.587f * pixels[o + g] + 0.114f * pixels[o + b];
            }
            else
            {
                span[p] = pixels[o + r];
                span[plane + p] = pixels[o + g];
                span[2 * plane + p] = pixels[o + b];
            }
        }
    }
}

/// <summary>An image could not be read or does not have the declared size.</summary>
public sealed class ImageReadException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ImageReadException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
