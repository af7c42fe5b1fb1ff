using Microsoft.ML;
using MLExtensions.Core;

namespace MLExtensions.Vision;

/// <summary>Training rows of an image classifier: raw channel-major pixels plus the class index.</summary>
internal sealed class ImageRowReader : IRowReaderFactory
{
    private readonly ImageInput _image;
    private readonly LabelBinding _label;
    private readonly bool _skipUnreadable;

    public ImageRowReader(ImageInput image, LabelBinding label, bool skipUnreadable)
    {
        _image = image;
        _label = label;
        _skipUnreadable = skipUnreadable;
    }

    public int FeatureSize => _image.Size;

    public PredictionTask Kind => PredictionTask.MulticlassClassification;

    public string SkippedRowDescription => "whose image could not be read";

    public IEnumerable<DataViewSchema.Column> ActiveColumns(DataViewSchema schema) =>
        _image.ActiveColumns(schema).Append(schema[_label.Column.Name]);

    public RowReader Create(DataViewRow row, bool withLabel)
    {
        var read = _image.CreateReader(row);
        var target = withLabel ? _label.CreateTargetGetter(row) : null;
        bool skip = _skipUnreadable;
        return (Span<float> features, out float label) =>
        {
            label = 0;
            if (target is not null)
            {
                if (target() is not float t)
                    return RowStatus.MissingLabel;
                label = t;
            }
            try
            {
                read(features);
            }
            catch (ImageReadException) when (skip)
            {
                return RowStatus.Skipped;
            }
            return RowStatus.Ok;
        };
    }
}
