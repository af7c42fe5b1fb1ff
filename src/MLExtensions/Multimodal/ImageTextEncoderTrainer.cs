using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;
using TorchSharp;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// Trains an image/text dual encoder contrastively (see <see cref="ImageTextEncoderOptions"/>) with the library's training
/// loop. LiT: both towers are locked, so their features are computed once — the ResNet-18 features of every image and the
/// MiniLM features of every distinct caption — and the loop trains the projections and the temperature on them. With
/// <see cref="ImageTextEncoderOptions.ClipModel"/>: the rows are raw pixels and CLIP token ids, and the loop fine-tunes
/// a copy of the whole CLIP network (<see cref="ClipContrastiveNetwork"/>).
/// </summary>
public sealed class ImageTextEncoderTrainer : NetworkTrainerBase<ImageTextEncoderTransformer>
{
    private readonly ImageTextEncoderOptions _options;
    private ImageInput? _image;
    private ImageClassifierNetwork? _imageTower;
    private SentenceEmbeddingTransformer? _textTower;

    internal ImageTextEncoderTrainer(IHostEnvironment env, ImageTextEncoderOptions options)
        : base(env, nameof(ImageTextEncoderTrainer), options)
    {
        _options = options;
    }

    /// <inheritdoc />
    protected override TrainingData PrepareData(IDataView input, int seed, IChannel channel)
    {
        new TextColumns(_options.CaptionColumnName, null).Validate(input.Schema);
        if (_options.ClipModel is { } clip)
        {
            _image = ClipImageInput.Bind(input.Schema, _options.ImageColumnName, _options.ImageHeight, _options.ImageWidth);
            channel.Info($"Fine-tuning both towers of the CLIP model from '{clip.Source}'.");
        }
        else
        {
            _image = ImageInput.Bind(input.Schema, _options.ImageColumnName, _options.ImageChannels ?? 3, _options.ImageHeight, _options.ImageWidth, null);
            channel.Info("Loading the locked towers: ImageNet ResNet-18 and MiniLM.");
            _imageTower = LockedImageTower.Create(_image, _options.ImageInputSize, pretrained: true, _options.ResNetWeightsPath);
            _textTower = new SentenceEmbeddingEstimator(Host, "CaptionEmbedding", _options.CaptionColumnName, new SentenceEmbeddingOptions()).Fit(input);
        }

        var (train, validation) = TrainingData.Split(Host, input, _options, seed);
        var captionIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var trainSource = Cache(train, captionIds, channel, "training");
        var validationSource = validation is null ? null : Cache(validation, captionIds, channel, "validation");
        return validationSource is null
            ? TrainingData.FromSources(trainSource, null, trainSource)
            : TrainingData.FromSources(trainSource, validationSource, trainSource, validationSource);
    }

    /// <summary>
    /// Reads every row once; targets are caption ids (equal captions, equal ids). Rows: LiT's tower features [N, 512 + 384],
    /// or for a CLIP model raw pixels and token ids [N, 3·H·W + L], L the longest caption's length (the causal text tower
    /// never looks at the padding after the end token, so shorter rows lose nothing).
    /// </summary>
    private InMemoryBatchSource Cache(IDataView data, Dictionary<string, int> captionIds, IChannel channel, string what)
    {
        var pixels = new List<float[]>();
        var captions = new List<string>();
        var columns = _image!.ActiveColumns(data.Schema).Append(data.Schema[_options.CaptionColumnName]);
        using (var cursor = data.GetRowCursor(columns))
        {
            var read = _image.CreateReader(cursor);
            var getCaption = cursor.GetGetter<ReadOnlyMemory<char>>(data.Schema[_options.CaptionColumnName]);
            ReadOnlyMemory<char> caption = default;
            while (cursor.MoveNext())
            {
                Host.CheckAlive();
                var row = new float[_image.Size];
                read(row);
                getCaption(ref caption);
                pixels.Add(row);
                captions.Add(caption.ToString());
            }
        }
        if (pixels.Count == 0)
            throw new InvalidOperationException($"The {what} data has no rows.");
        var distinct = captions.Distinct(StringComparer.Ordinal).Where(c => !captionIds.ContainsKey(c)).ToList();
        foreach (string c in distinct)
            captionIds[c] = captionIds.Count;
        var ids = torch.tensor(captions.Select(c => (float)captionIds[c]).ToArray());
        if (_options.ClipModel is { } clip)
        {
            channel.Info($"Read {pixels.Count} {what} rows ({distinct.Count} new distinct captions).");
            var tokens = captions.Select(c => clip.Tokenizer.Encode(c)).ToList();
            int length = tokens.Max(t => Array.IndexOf(t, (long)clip.Tokenizer.EndOfTextId) + 1);
            var flat = new float[pixels.Count * (_image.Size + length)];
            for (int i = 0; i < pixels.Count; i++)
            {
                var row = flat.AsSpan(i * (_image.Size + length), _image.Size + length);
                pixels[i].CopyTo(row);
                for (int j = 0; j < length; j++)
                    row[_image.Size + j] = tokens[i][j];
            }
            return InMemoryBatchSource.FromTensors(torch.tensor(flat, new long[] { pixels.Count, _image.Size + length }), ids);
        }
        channel.Info($"Caching tower features of {pixels.Count} {what} rows ({distinct.Count} new distinct captions).");

        using var scope = torch.NewDisposeScope();
        using var raw = torch.tensor(pixels.SelectMany(p => p).ToArray(), new long[] { pixels.Count, _image.Size });
        var imageFeatures = LockedImageTower.Features(_imageTower!, raw);
        var uniqueCaptions = captions.Distinct(StringComparer.Ordinal).ToList();
        var textByCaption = uniqueCaptions.Zip(_textTower!.Embed(uniqueCaptions)).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
        var textFeatures = torch.tensor(captions.SelectMany(c => textByCaption[c]).ToArray(), new long[] { captions.Count, _textTower.Dimension });
        var rows = torch.cat(new[] { imageFeatures, textFeatures }, 1);
        return InMemoryBatchSource.FromTensors(rows.DetachFromDisposeScope(), ids);
    }

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor> CreateNetwork(DataViewSchema schema, TrainingData data, Generator generator) =>
        _options.ClipModel is { } clip
            ? new ClipContrastiveNetwork(clip.CopyNetwork(), _image!.Height, _image.Width)
            : _options.LockTextProjection
            ? new ContrastiveProjection(512, _textTower!.Dimension, _textTower.Dimension, generator, lockText: true)
            : new ContrastiveProjection(512, _textTower!.Dimension, _options.ProjectionDimension, generator);

    /// <inheritdoc />
    protected override ITrainingTask CreateTask(nn.Module<Tensor, Tensor> network, DataViewSchema schema) => new ContrastiveTask(network);

    /// <inheritdoc />
    protected override ImageTextEncoderTransformer CreateTransformer(nn.Module<Tensor, Tensor> network, DataViewSchema schema, TrainingState state) =>
        network is ClipContrastiveNetwork clip
            ? new(Host, clip.ImageEncoder, _options.ClipModel!.Tokenizer, _image!, _options.OutputColumnName)
            : new(Host, new LitNetwork(_imageTower!, (ContrastiveProjection)network), _textTower!, _image!, _options.OutputColumnName);

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(_options.ImageColumnName, out _))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The image column '{_options.ImageColumnName}' was not found in the input schema.");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[_options.OutputColumnName] = new SchemaShape.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }
}
