using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Text;
using TorchSharp;
using static TorchSharp.torch;
using MLExtensions.Core.Internals;

[assembly: LoadableClass(typeof(TextClassifierTransformer), null, typeof(SignatureLoadModel), "MLExtensions text classifier", TextClassifierTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(IRowMapper), typeof(TextClassifierTransformer), null, typeof(SignatureLoadRowMapper), "MLExtensions text classifier", TextClassifierTransformer.LoaderSignature)]


namespace MLExtensions.Text;

/// <summary>
/// A fitted text classifier, produced by <c>TextClassifier</c>. Tokenizes the text column(s), runs the encoder and
/// adds the prediction columns of its task. The vocabulary, encoder configuration and weights are inside the saved
/// model, so <c>mlContext.Model.Load</c> needs no other file.
/// </summary>
public sealed class TextClassifierTransformer : NetworkTransformerBase
{
    internal const string LoaderSignature = "MLExtTextClassifier";

    private readonly TextClassifierOptions _options;

    internal TextClassifierTransformer(IHostEnvironment env, TextClassifierNetwork network, PredictionOutputs outputs, TextClassifierOptions options,
        WordPieceTokenizer tokenizer, TextColumns columns)
        : base(env.Register(nameof(TextClassifierTransformer)), network, outputs, options.ScoringPrecision)
    {
        _options = options;
        Tokenizer = tokenizer;
        Columns = columns;
    }

    /// <summary>The tokenizer (with the model's vocabulary).</summary>
    public WordPieceTokenizer Tokenizer { get; }

    /// <summary>The text column(s) read.</summary>
    public TextColumns Columns { get; }

    /// <summary>Longest token sequence; longer texts are truncated.</summary>
    public int MaxLength => _options.MaxLength;

    /// <summary>The network.</summary>
    public TextClassifierNetwork Classifier => (TextClassifierNetwork)Network;

    private protected override IReadOnlyList<string> InputColumnNames =>
        Columns.SecondTextColumnName is null ? new[] { Columns.TextColumnName } : new[] { Columns.TextColumnName, Columns.SecondTextColumnName };

    private protected override void ValidateInputSchema(DataViewSchema schema) => Columns.Validate(schema);

    private protected override Func<Tensor> CreateRowInput(DataViewRow row)
    {
        var tokenize = Columns.CreateTokenizer(row, Tokenizer, _options.MaxLength);
        int pad = Tokenizer.PadId;
        return () => TokenBatchSource.Pack(new[] { tokenize() }, pad);
    }

    /// <inheritdoc />
    internal override bool CanPadRowInputs => true;

    /// <inheritdoc />
    /// <remarks>Rows are packed [1, 3, L] (ids, attention mask, type ids); padding has the pad id, mask 0 and type 0, as in training batches.</remarks>
    internal override Tensor PadRowInputs(IReadOnlyList<Tensor> rows)
    {
        long length = rows.Max(r => r.shape[2]);
        var batch = torch.zeros(rows.Count, 3, length, dtype: rows[0].dtype);
        batch.select(1, 0).fill_(Tokenizer.PadId);
        for (int n = 0; n < rows.Count; n++)
            batch.narrow(0, n, 1).narrow(2, 0, rows[n].shape[2]).copy_(rows[n]);
        return batch;
    }

    private static VersionInfo GetVersionInfo() => NetworkPersistence.Version("MLXTXTCL", LoaderSignature, typeof(TextClassifierTransformer));

    /// <inheritdoc />
    public override void SaveModel(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        NetworkPersistence.SaveOptions(ctx, _options);
        NetworkPersistence.SaveOptions(ctx, Classifier.Encoder.Config);
        ctx.Writer.Write(Columns.TextColumnName);
        ctx.Writer.Write(Columns.SecondTextColumnName ?? "");
        TokenizerPersistence.Save(ctx, Tokenizer);
        Outputs.Save(Host, ctx);
        NetworkPersistence.SaveWeights(ctx, Network);
    }

    internal static TextClassifierTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MlNetCompatibility.EnsureCompatible();
        ctx.CheckAtModel(GetVersionInfo());
        TorchNativeLoader.EnsureLoaded();
        var options = NetworkPersistence.LoadOptions<TextClassifierOptions>(ctx, LoaderSignature);
        var config = NetworkPersistence.LoadOptions<BertConfig>(ctx, LoaderSignature);
        string text = ctx.Reader.ReadString();
        string second = ctx.Reader.ReadString();
        var tokenizer = TokenizerPersistence.Load(ctx, config, "text classifier");
        var outputs = PredictionOutputs.Load(env, ctx);
        var network = new TextClassifierNetwork(new BertEncoder(config), outputs.ClassCount, options.Pooling, options.ClassifierDropout, null);
        NetworkPersistence.LoadWeights(ctx, network, LoaderSignature);
        return new TextClassifierTransformer(env, network, outputs, options, tokenizer,
            new TextColumns(text, second.Length == 0 ? null : second));
    }

    internal static IRowMapper Create(IHostEnvironment env, ModelLoadContext ctx, DataViewSchema inputSchema) =>
        Create(env, ctx).MakeRowMapper(inputSchema);
}
