using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLExtensions.Core;

namespace MLExtensions.Explainability;

/// <summary>Checks and reads the explained column.</summary>
internal static class ExplainedColumn
{
    /// <summary>Throws unless <paramref name="column"/> is a vector of Single of <paramref name="size"/> slots (any known size when 0).</summary>
    public static void ValidateVector(DataViewSchema schema, string column, int size)
    {
        var found = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}].");
        if (found.Type is not VectorDataViewType { ItemType: NumberDataViewType item } vector || item != NumberDataViewType.Single || vector.Size == 0 || (size > 0 && vector.Size != size))
            throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' must be a vector of {(size > 0 ? size.ToString() : "a known number of")} Single values; found {found.Type}.");
    }

    /// <summary>Throws unless <paramref name="column"/> is a text column (KernelSHAP over its words).</summary>
    public static void ValidateText(DataViewSchema schema, string column)
    {
        var found = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}].");
        if (found.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException("InputColumnName", column, $"The explained column '{column}' must be text (its words are explained); found {found.Type}.");
    }

    /// <summary>Whether <paramref name="column"/> of <paramref name="schema"/> is text.</summary>
    public static bool IsText(DataViewSchema schema, string column) => schema.GetColumnOrNull(column)?.Type is TextDataViewType;

    /// <summary>Whether <paramref name="column"/> of <paramref name="schema"/> is an <see cref="MLImage"/> column.</summary>
    public static bool IsImage(DataViewSchema schema, string column) => schema.GetColumnOrNull(column)?.Type is ImageDataViewType;

    /// <summary>Throws unless <paramref name="column"/> is an MLImage column whose declared size, if any, is <paramref name="height"/>×<paramref name="width"/>.</summary>
    public static void ValidateImage(DataViewSchema schema, string column, int height, int width)
    {
        var found = schema.GetColumnOrNull(column)
            ?? throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained column '{column}' was not found in the data; its columns are [{string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}].");
        if (found.Type is not ImageDataViewType image)
            throw new ArgumentOutOfRangeException("InputColumnName", column, $"The explained column '{column}' must be an MLImage column (its patches are explained); found {found.Type}.");
        if (image.Height > 0 && image.Width > 0 && (image.Height != height || image.Width != width))
            throw new ArgumentOutOfRangeException("InputColumnName", column,
                $"The explained image column '{column}' holds {image.Width}×{image.Height} images, but the background images were {width}×{height}; resize both to the same size (mlContext.Transforms.ResizeImages).");
    }

    /// <summary>
    /// The pixel-wise mean (3×H×W RGB planes, rounded to bytes as an MLImage holds them) of up to <paramref name="limit"/>
    /// images of <paramref name="column"/>, with their height and width; null when there are no rows.
    /// </summary>
    public static (float[] Mean, int Height, int Width)? MeanImage(IDataView data, string column, int limit)
    {
        using var cursor = data.GetRowCursor(new[] { data.Schema[column] });
        var get = cursor.GetGetter<MLImage>(data.Schema[column]);
        MLImage image = null!;
        double[]? sum = null;
        int height = 0, width = 0, count = 0;
        while (count < limit && cursor.MoveNext())
        {
            get(ref image);
            if (image is null)
                throw new InvalidOperationException($"The background image in column '{column}' at row {cursor.Position} is missing or unreadable.");
            if (sum is null)
            {
                (height, width) = (image.Height, image.Width);
                sum = new double[ImagePixels.Channels * height * width];
            }
            else if (image.Height != height || image.Width != width)
            {
                throw new InvalidOperationException(
                    $"The background images in column '{column}' must all have one size: row {cursor.Position} is {image.Width}×{image.Height}, the first was {width}×{height}. Resize them (mlContext.Transforms.ResizeImages).");
            }
            var planes = ImagePixels.ToPlanes(image);
            for (int i = 0; i < planes.Length; i++)
                sum[i] += planes[i];
            count++;
        }
        return sum is null ? null : (sum.Select(v => (float)ImagePixels.ToByte(v / count)).ToArray(), height, width);
    }

    /// <summary>The SlotNames of <paramref name="column"/> when it has <paramref name="size"/> of them.</summary>
    public static VBuffer<ReadOnlyMemory<char>>? SlotNames(DataViewSchema schema, string column, int size)
    {
        var found = schema.GetColumnOrNull(column);
        if (found is null || !found.Value.HasSlotNames(size))
            return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        found.Value.GetSlotNames(ref names);
        return names;
    }

    /// <summary>Up to <paramref name="limit"/> rows of the explained column of a KernelSHAP model.</summary>
    public static float[][] ReadVectors(IDataView data, string column, int limit)
    {
        var rows = new List<float[]>();
        using var cursor = data.GetRowCursor(new[] { data.Schema[column] });
        var get = cursor.GetGetter<VBuffer<float>>(data.Schema[column]);
        VBuffer<float> v = default;
        while (rows.Count < limit && cursor.MoveNext())
        {
            get(ref v);
            rows.Add(v.DenseValues().ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Up to <paramref name="limit"/> rows as the network reads them (raw features or pixels), flattened.</summary>
    public static float[][] ReadNetworkInputs(NetworkTransformerBase network, IDataView data, int limit)
    {
        var rows = new List<float[]>();
        var columns = network.NetworkInputColumns.Select(n => data.Schema.GetColumnOrNull(n)).Where(c => c is not null).Select(c => c!.Value);
        using var cursor = data.GetRowCursor(columns);
        var input = network.CreateNetworkInput(cursor);
        while (rows.Count < limit && cursor.MoveNext())
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            rows.Add(input().reshape(-1).data<float>().ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Counts rows up to <paramref name="limit"/>.</summary>
    public static int CountRows(IDataView data, int limit)
    {
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        int count = 0;
        while (count < limit && cursor.MoveNext())
            count++;
        return count;
    }
}
