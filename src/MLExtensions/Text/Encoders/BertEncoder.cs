using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Text;

/// <summary>The inputs of a BERT encoder for a batch: token ids, attention mask (1 = token, 0 = padding), token types, all [N, L] int64.</summary>
public sealed record EncoderInput(Tensor TokenIds, Tensor AttentionMask, Tensor TokenTypeIds);

/// <summary>
/// A BERT-family transformer encoder, written to be read top to bottom: embeddings (word + position + token type,
/// LayerNorm), then <see cref="BertConfig.Layers"/> layers of multi-head self-attention and a GELU feed-forward
/// block, each wrapped in a residual connection and a post-LayerNorm. Parameter names follow Hugging Face's
/// <c>BertModel</c> (<c>embeddings.word_embeddings.weight</c>, <c>encoder.layer.0.attention.self.query.weight</c>, …),
/// so checkpoints map by name.
/// </summary>
public sealed class BertEncoder : nn.Module<EncoderInput, Tensor>
{
#pragma warning disable IDE1006 // field names are checkpoint keys
    private readonly BertEmbeddings embeddings;
    private readonly BertStack encoder;
#pragma warning restore IDE1006

    /// <summary>Builds the encoder.</summary>
    public BertEncoder(BertConfig config, Generator? generator = null) : base(nameof(BertEncoder))
    {
        config.Validate();
        Config = config;
        var g = generator ?? new Generator(0, CPU);
        embeddings = new BertEmbeddings(config, g);
        encoder = new BertStack(config, g);
        RegisterComponents();
    }

    /// <summary>The architecture.</summary>
    public BertConfig Config { get; }

    /// <summary>The encoder layers, bottom first (for freezing lower layers).</summary>
    public IReadOnlyList<nn.Module> Layers => encoder.Layers;

    /// <summary>The embedding layer (for freezing).</summary>
    public nn.Module Embeddings => embeddings;

    /// <summary>The word-embedding table [vocabulary, width or <see cref="BertConfig.WordEmbeddingRank"/>] (not a copy).</summary>
    internal Tensor WordEmbeddingTable => embeddings.WordTable;

    /// <summary>
    /// When set, <see cref="forward"/> keeps the embedding output and every layer's output in <see cref="LastHiddenStates"/>
    /// (for intermediate-layer distillation). Off for scoring.
    /// </summary>
    internal bool RecordHiddenStates
    {
        get => _recordHiddenStates;
        set
        {
            _recordHiddenStates = value;
            if (value)
                return;
            // Free the recorded states now, on this thread, rather than leaving them to the finalizer.
            foreach (var state in LastHiddenStates)
                state.Dispose();
            LastHiddenStates = Array.Empty<Tensor>();
        }
    }

    private bool _recordHiddenStates;

    /// <summary>When set, every layer keeps its head-averaged attention probabilities (see <see cref="LastAttentions"/>). Off for scoring.</summary>
    internal bool RecordAttentions
    {
        get => encoder.Layers.Cast<BertLayer>().Any(l => l.Attention.RecordProbabilities);
        set
        {
            foreach (var layer in encoder.Layers.Cast<BertLayer>())
                layer.Attention.RecordProbabilities = value;
        }
    }

    /// <summary>Each layer's head-averaged attention probabilities [N, L, L] from the last pass with <see cref="RecordAttentions"/>.</summary>
    internal IReadOnlyList<Tensor> LastAttentions =>
        encoder.Layers.Cast<BertLayer>().Select(l => l.Attention.LastProbabilities ?? throw new InvalidOperationException("No attention was recorded.")).ToList();

    /// <summary>The word embeddings of <paramref name="ids"/> [N, L] → [N, L, width of the table] (before any low-rank projection).</summary>
    internal Tensor LookupWordEmbeddings(Tensor ids) => embeddings.LookupWords(ids);

    /// <summary>
    /// Until the result is disposed, forward passes of this encoder on the calling thread use <paramref name="words"/>
    /// [N, L, table width] instead of looking the token ids up, so gradients can be taken at the word-embedding output
    /// (explanations). Thread-local: other threads scoring with the same encoder are not affected.
    /// </summary>
    internal IDisposable ReplaceWordEmbeddings(Tensor words)
    {
        BertEmbeddings.ReplacedOn = embeddings;
        BertEmbeddings.ReplacementWords = words;
        return new WordEmbeddingRestore();
    }

    private sealed class WordEmbeddingRestore : IDisposable
    {
        public void Dispose()
        {
            BertEmbeddings.ReplacedOn = null;
            BertEmbeddings.ReplacementWords = null;
        }
    }

    /// <summary>
    /// Whether evaluation-mode passes of more than one row that record nothing use libtorch's fused scaled-dot-product
    /// attention; training always uses the explicit form, whose dropout draws from the run's seeded generator.
    /// Off by default: the fused kernel sums in another order, so a row scored in a batch (Transform, Evaluate) would differ
    /// from the same row scored alone (PredictionEngine) by rounding (7.5e-9 in a probability, seen by the WebApi reload
    /// test), and this library promises identical answers from both. The precision benchmark turns it on to measure what it
    /// would save (1.17-1.20× at batch 32 in float32).
    /// </summary>
    internal static bool FusedAttention { get; set; }

    /// <summary>
    /// When set, passes on this thread use the explicit attention form even where the fused kernel would apply: its softmax
    /// is a module that forward hooks reach (DeepLIFT's rescale rule sets it while explaining).
    /// </summary>
    [ThreadStatic]
    internal static bool ExplicitAttentionOnThisThread;

    /// <summary>Embedding output then each layer's output [N, L, H], from the last forward pass with <see cref="RecordHiddenStates"/>.</summary>
    internal IReadOnlyList<Tensor> LastHiddenStates { get; private set; } = Array.Empty<Tensor>();

    /// <summary>Last hidden state [N, L, H].</summary>
    public override Tensor forward(EncoderInput input)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = embeddings.call(input.TokenIds, input.TokenTypeIds);
        // Additive mask: 0 where attending is allowed, a large negative number on padding keys.
        var mask = input.AttentionMask.logical_not().to(hidden.dtype).unsqueeze(1).unsqueeze(1).mul(RootedScalars.MaskedScore);
        if (!RecordHiddenStates)
            return encoder.call(hidden, mask).MoveToOuterDisposeScope();
        var states = new List<Tensor> { hidden };
        foreach (var layer in encoder.Layers.Cast<nn.Module<Tensor, Tensor, Tensor>>())
        {
            hidden = layer.call(hidden, mask);
            states.Add(hidden);
        }
        // The states outlive the callers' dispose scopes (the loss reads them after the forward pass), so they leave every
        // scope and are freed here on the next recording pass; the returned tensor keeps the usual scope semantics.
        foreach (var old in LastHiddenStates)
            old.Dispose();
        // Kept in float32 (an autocast pass leaves them in bfloat16): the distillation losses that read them compute in float32.
        LastHiddenStates = states.Select(s => (s.dtype == ScalarType.Float32 ? s.alias() : s.to(ScalarType.Float32)).DetachFromDisposeScope()).ToList();
        return hidden.MoveToOuterDisposeScope();
    }

    /// <summary>Mean of the hidden states over real (unmasked) tokens: [N, L, H] → [N, H].</summary>
    public static Tensor MeanPool(Tensor hidden, Tensor attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask.to(hidden.dtype).unsqueeze(-1);
        var sum = (hidden * mask).sum(dim: 1L);
        var count = mask.sum(dim: 1L).clamp_min(RootedScalars.Tiny);
        return (sum / count).MoveToOuterDisposeScope();
    }

    private sealed class BertEmbeddings : nn.Module<Tensor, Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Embedding word_embeddings;
        private readonly Linear? word_projection;
        private readonly Embedding? position_embeddings;
        private readonly Embedding token_type_embeddings;
        private readonly LayerNorm LayerNorm;
        private readonly SeededDropout dropout;
        private readonly Tensor? sinusoid;
#pragma warning restore IDE1006

        public Tensor WordTable => word_embeddings.weight!;

        // See BertEncoder.ReplaceWordEmbeddings.
        [ThreadStatic]
        public static BertEmbeddings? ReplacedOn;

        [ThreadStatic]
        public static Tensor? ReplacementWords;

        public Tensor LookupWords(Tensor ids) => word_embeddings.call(ids);

        public BertEmbeddings(BertConfig c, Generator g) : base(nameof(BertEmbeddings))
        {
            // A low-rank table is widened by a shared linear map (BertConfig.WordEmbeddingRank).
            int rank = c.WordEmbeddingRank > 0 ? c.WordEmbeddingRank : c.HiddenSize;
            word_embeddings = nn.Embedding(c.VocabSize, rank);
            if (rank < c.HiddenSize)
                word_projection = nn.Linear(rank, c.HiddenSize);
            token_type_embeddings = nn.Embedding(c.TypeVocabSize, c.HiddenSize);
            if (c.PositionEncoding == PositionEncoding.Learned)
                position_embeddings = nn.Embedding(c.MaxPositions, c.HiddenSize);
            else
                sinusoid = Sinusoids(c.MaxPositions, c.HiddenSize);
            LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEpsilon);
            dropout = new SeededDropout(c.HiddenDropout, g);
            using (torch.no_grad())
            {
                // BERT's initialisation: N(0, 0.02) for embeddings, drawn from the run's generator.
                word_embeddings.weight!.normal_(0, 0.02, g);
                token_type_embeddings.weight!.normal_(0, 0.02, g);
                position_embeddings?.weight!.normal_(0, 0.02, g);
            }
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids, Tensor types)
        {
            using var scope = torch.NewDisposeScope();
            long length = ids.shape[1];
            var positions = position_embeddings is not null
                ? position_embeddings.weight!.narrow(0, 0, length).unsqueeze(0) // rows 0..L-1: the lookup of positions 0..L-1
                : sinusoid!.narrow(0, 0, length).unsqueeze(0).to(ids.device);
            var words = ReferenceEquals(ReplacedOn, this) ? ReplacementWords! : word_embeddings.call(ids);
            if (word_projection is not null)
                words = word_projection.call(words);
            var x = words.add(positions, RootedScalars.One).add(token_type_embeddings.call(types), RootedScalars.One);
            return dropout.call(LayerNorm.call(x)).MoveToOuterDisposeScope();
        }

        private static Tensor Sinusoids(int positions, int width)
        {
            var table = new float[positions * width];
            for (int p = 0; p < positions; p++)
            {
                for (int i = 0; i < width; i += 2)
                {
                    double angle = p / Math.Pow(10000, (double)i / width);
                    table[p * width + i] = (float)Math.Sin(angle);
                    if (i + 1 < width)
                        table[p * width + i + 1] = (float)Math.Cos(angle);
                }
            }
            return torch.tensor(table, new long[] { positions, width });
        }
    }

    private sealed class BertStack : nn.Module<Tensor, Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly ModuleList<BertLayer> layer;
#pragma warning restore IDE1006

        public BertStack(BertConfig c, Generator g) : base(nameof(BertStack))
        {
            layer = nn.ModuleList(Enumerable.Range(0, c.Layers).Select(_ => new BertLayer(c, g)).ToArray());
            RegisterComponents();
        }

        public IReadOnlyList<nn.Module> Layers => layer.Cast<nn.Module>().ToList();

        public override Tensor forward(Tensor hidden, Tensor mask)
        {
            foreach (var l in layer)
                hidden = l.call(hidden, mask);
            return hidden;
        }
    }

    private sealed class BertLayer : nn.Module<Tensor, Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly BertAttention attention;
        private readonly DenseBlock intermediate;
        private readonly ResidualOutput output;

        // The feed-forward nonlinearity as a module (no parameters, no state-dict key) so that forward hooks reach it
        // (DeepLIFT's rescale rule); the same operation as the functional call.
        private readonly nn.Module<Tensor, Tensor> activation;
#pragma warning restore IDE1006

        /// <summary>The layer's self-attention (for recording its attention probabilities).</summary>
        public SelfAttention Attention => attention.Self;

        public BertLayer(BertConfig c, Generator g) : base(nameof(BertLayer))
        {
            attention = new BertAttention(c, g);
            intermediate = new DenseBlock(c.HiddenSize, c.IntermediateSize);
            output = new ResidualOutput(c.IntermediateSize, c.HiddenSize, c.LayerNormEpsilon, c.HiddenDropout, g);
            activation = c.HiddenActivation switch
            {
                "relu" => nn.ReLU(),
                "gelu_new" => nn.GELU(GELU.Approximate.tanh),
                _ => nn.GELU(),
            };
            RegisterComponents();
        }

        public override Tensor forward(Tensor hidden, Tensor mask)
        {
            using var scope = torch.NewDisposeScope();
            var attended = attention.call(hidden, mask);
            var inner = activation.call(intermediate.call(attended));
            return output.call(inner, attended).MoveToOuterDisposeScope();
        }
    }

    /// <summary>Self-attention followed by its output projection, residual and LayerNorm (HF: BertAttention).</summary>
    private sealed class BertAttention : nn.Module<Tensor, Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly SelfAttention self;
        private readonly ResidualOutput output;
#pragma warning restore IDE1006

        public SelfAttention Self => self;

        public BertAttention(BertConfig c, Generator g) : base(nameof(BertAttention))
        {
            self = new SelfAttention(c, g);
            output = new ResidualOutput(c.HiddenSize, c.HiddenSize, c.LayerNormEpsilon, c.HiddenDropout, g);
            RegisterComponents();
        }

        public override Tensor forward(Tensor hidden, Tensor mask) => output.call(self.call(hidden, mask), hidden);
    }

    /// <summary>Multi-head scaled dot-product self-attention: softmax(Q Kᵀ / √d + mask) V, heads concatenated.</summary>
    private sealed class SelfAttention : nn.Module<Tensor, Tensor, Tensor>
    {
        /// <summary>When set, the head-averaged attention probabilities [N, L, L] of each pass are kept in <see cref="LastProbabilities"/>.</summary>
        public bool RecordProbabilities
        {
            get => _recordProbabilities;
            set
            {
                _recordProbabilities = value;
                if (value)
                    return;
                LastProbabilities?.Dispose(); // freed on this thread, not by the finalizer
                LastProbabilities = null;
            }
        }

        private bool _recordProbabilities;

        /// <summary>Head-averaged attention probabilities of the last recording pass (outside every dispose scope; replaced by the next).</summary>
        public Tensor? LastProbabilities { get; private set; }

#pragma warning disable IDE1006
        private readonly Linear query;
        private readonly Linear key;
        private readonly Linear value;
        private readonly SeededDropout dropout;
        private readonly Softmax softmax; // a module so that forward hooks reach it (DeepLIFT); no state-dict key
#pragma warning restore IDE1006
        private readonly int _heads;
        private readonly int _headSize;
        private readonly Scalar _scoreDivisor; // √(head size), kept alive with the module (see RootedScalars)

        public SelfAttention(BertConfig c, Generator g) : base(nameof(SelfAttention))
        {
            query = nn.Linear(c.HiddenSize, c.HiddenSize);
            key = nn.Linear(c.HiddenSize, c.HiddenSize);
            value = nn.Linear(c.HiddenSize, c.HiddenSize);
            dropout = new SeededDropout(c.AttentionDropout, g);
            softmax = nn.Softmax(-1);
            _heads = c.Heads;
            _headSize = c.HiddenSize / c.Heads;
            _scoreDivisor = Math.Sqrt(_headSize);
            RegisterComponents();
        }

        public override Tensor forward(Tensor hidden, Tensor mask)
        {
            using var scope = torch.NewDisposeScope();
            long n = hidden.shape[0], l = hidden.shape[1];
            Tensor Split(Tensor x) => x.view(n, l, _heads, _headSize).transpose(1, 2); // [N, heads, L, d]
            var q = Split(query.call(hidden));
            var k = Split(key.call(hidden));
            var v = Split(value.call(hidden));
            if (BertEncoder.FusedAttention && n > 1 && !training && !RecordProbabilities && !BertEncoder.ExplicitAttentionOnThisThread)
            {
                // Batch scoring: libtorch's fused kernel (no [N, heads, L, L] score tensor in memory). precision --part scoring
                // measured it 1.2× faster for the whole float32 network at batch 32, but slower for a single row, which keeps
                // the explicit form. It reorders the float32 sums: logits move by rounding only (≤ 2e-7 there).
                var fused = nn.functional.scaled_dot_product_attention(q, k, v, mask.to(q.dtype));
                return fused.transpose(1, 2).contiguous().view(n, l, _heads * _headSize).MoveToOuterDisposeScope();
            }
            var scores = Autocast.MatMul(q, k.transpose(-1, -2)).div(_scoreDivisor).add(mask, RootedScalars.One);
            var attention = softmax.call(scores);
            if (RecordProbabilities)
            {
                LastProbabilities?.Dispose();
                LastProbabilities = attention.mean(new long[] { 1 }).DetachFromDisposeScope();
            }
            var probabilities = dropout.call(attention);
            var context = Autocast.MatMul(probabilities, v).transpose(1, 2).contiguous().view(n, l, _heads * _headSize);
            return context.MoveToOuterDisposeScope();
        }
    }

    /// <summary>A dense layer (HF: BertIntermediate's <c>dense</c>).</summary>
    private sealed class DenseBlock : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Linear dense;
#pragma warning restore IDE1006

        public DenseBlock(int inputs, int outputs) : base(nameof(DenseBlock))
        {
            dense = nn.Linear(inputs, outputs);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => dense.call(x);
    }

    /// <summary>dense → dropout → LayerNorm(x + residual) (HF: BertSelfOutput / BertOutput).</summary>
    private sealed class ResidualOutput : nn.Module<Tensor, Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Linear dense;
        private readonly LayerNorm LayerNorm;
        private readonly SeededDropout dropout;
#pragma warning restore IDE1006

        public ResidualOutput(int inputs, int outputs, double eps, double dropoutRate, Generator g) : base(nameof(ResidualOutput))
        {
            dense = nn.Linear(inputs, outputs);
            LayerNorm = nn.LayerNorm(outputs, eps);
            dropout = new SeededDropout(dropoutRate, g);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor residual)
        {
            using var scope = torch.NewDisposeScope();
            return LayerNorm.call(dropout.call(dense.call(x)).add(residual, RootedScalars.One)).MoveToOuterDisposeScope();
        }
    }
}
