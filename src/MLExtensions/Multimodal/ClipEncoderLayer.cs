using MLExtensions.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLExtensions.Multimodal;

/// <summary>
/// One layer of CLIP's transformer, shared by both towers: pre-LayerNorm multi-head self-attention and a two-layer
/// feed-forward block, each added back to the residual stream (<c>x + attn(ln1(x))</c>, then <c>x + mlp(ln2(x))</c>).
/// BERT's layers normalize after the residual instead, hence a separate module. Parameter names are Hugging Face's
/// <c>CLIPEncoderLayer</c> names (<c>self_attn.q_proj</c>, <c>layer_norm1</c>, <c>mlp.fc1</c>, …).
/// </summary>
internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    private static readonly Scalar QuickGeluFactor = 1.702;

#pragma warning disable IDE1006 // field names are checkpoint keys
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm layer_norm2;
#pragma warning restore IDE1006

    public ClipEncoderLayer(ClipTowerConfig config) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(config.HiddenSize, config.Heads);
        layer_norm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new ClipMlp(config.HiddenSize, config.IntermediateSize, config.Activation);
        layer_norm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>[N, L, H] → [N, L, H]; <paramref name="additiveMask"/> [L, L] (or null) is added to the attention scores.</summary>
    public override Tensor forward(Tensor x, Tensor? additiveMask)
    {
        using var scope = torch.NewDisposeScope();
        x = x.add(self_attn.call(layer_norm1.call(x), additiveMask), RootedScalars.One);
        x = x.add(mlp.call(layer_norm2.call(x)), RootedScalars.One);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Multi-head self-attention with separate q/k/v projections (Hugging Face's <c>CLIPAttention</c>).</summary>
    private sealed class ClipAttention : nn.Module<Tensor, Tensor?, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Linear q_proj;
        private readonly Linear k_proj;
        private readonly Linear v_proj;
        private readonly Linear out_proj;
#pragma warning restore IDE1006
        private readonly int _heads;
        private readonly Scalar _scale;

        public ClipAttention(int width, int heads) : base(nameof(ClipAttention))
        {
            _heads = heads;
            _scale = 1.0 / Math.Sqrt(width / heads); // a field, so the Scalar lives as long as the module
            q_proj = nn.Linear(width, width);
            k_proj = nn.Linear(width, width);
            v_proj = nn.Linear(width, width);
            out_proj = nn.Linear(width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x, Tensor? additiveMask)
        {
            using var scope = torch.NewDisposeScope();
            long n = x.shape[0], length = x.shape[1], width = x.shape[2];
            Tensor Split(Tensor t) => t.view(n, length, _heads, width / _heads).transpose(1, 2); // [N, heads, L, d]
            var q = Split(q_proj.call(x).mul(_scale));
            var k = Split(k_proj.call(x));
            var v = Split(v_proj.call(x));
            var scores = Autocast.MatMul(q, k.transpose(-1, -2));
            if (additiveMask is not null)
                scores = scores.add(additiveMask, RootedScalars.One);
            var context = Autocast.MatMul(scores.softmax(-1), v).transpose(1, 2).reshape(n, length, width);
            return out_proj.call(context).MoveToOuterDisposeScope();
        }
    }

    /// <summary>fc1 → activation → fc2.</summary>
    private sealed class ClipMlp : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly Linear fc1;
        private readonly Linear fc2;
#pragma warning restore IDE1006
        private readonly ClipActivation _activation;

        public ClipMlp(int width, int intermediate, ClipActivation activation) : base(nameof(ClipMlp))
        {
            _activation = activation;
            fc1 = nn.Linear(width, intermediate);
            fc2 = nn.Linear(intermediate, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = torch.NewDisposeScope();
            var h = fc1.call(x);
            h = _activation == ClipActivation.QuickGelu ? h.mul(h.mul(QuickGeluFactor).sigmoid()) : nn.functional.gelu(h);
            return fc2.call(h).MoveToOuterDisposeScope();
        }
    }
}

/// <summary>A stack of <see cref="ClipEncoderLayer"/>s (Hugging Face's <c>CLIPEncoder</c>: <c>layers.{i}</c>).</summary>
internal sealed class ClipEncoder : nn.Module<Tensor, Tensor?, Tensor>
{
#pragma warning disable IDE1006
    private readonly ModuleList<ClipEncoderLayer> layers;
#pragma warning restore IDE1006

    public ClipEncoder(ClipTowerConfig config) : base(nameof(ClipEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new ClipEncoderLayer(config)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? additiveMask)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var layer in layers)
            x = layer.call(x, additiveMask);
        return x.MoveToOuterDisposeScope();
    }
}
