using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLExtensions.Core.Native;
using MLExtensions.Onnx.Export;
using Onnx;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MLExtensions.Tests.Onnx;

/// <summary>
/// LayerNorm and the GELU forms written as ONNX nodes, run by ONNX Runtime, match TorchSharp — at opset 17
/// (LayerNormalization operator) and at opset 12, where LayerNorm is decomposed into ReduceMean/Sub/Mul/Sqrt/Div.
/// </summary>
public class LayerNormDecompositionTests
{
    [Theory]
    [InlineData(12)]
    [InlineData(17)]
    public void LayerNormMatchesTorchAtEitherOpset(int opset)
    {
        TorchNativeLoader.EnsureLoaded();
        using var norm = nn.LayerNorm(16, 1e-5);
        using (torch.no_grad())
        {
            norm.weight!.uniform_(0.5, 1.5, new Generator(1, CPU));
            norm.bias!.uniform_(-0.5, 0.5, new Generator(2, CPU));
        }
        AssertMatches(opset, (writer, x) => LayerNormExporter.Export(writer, norm, x, "ln"), x => norm.call(x));
    }

    [Fact]
    public void GeluFormsMatchTorch()
    {
        TorchNativeLoader.EnsureLoaded();
        AssertMatches(17, (writer, x) => ActivationExporter.Gelu(writer, x, "gelu"), x => nn.functional.gelu(x));
        AssertMatches(17, (writer, x) => ActivationExporter.GeluTanh(writer, x, "gelu_tanh"), x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh));
    }

    private static void AssertMatches(int opset, Func<IOnnxGraphWriter, string, string> emit, Func<torch.Tensor, torch.Tensor> reference)
    {
        // Values with a non-zero mean and a wide spread, so the centring and scaling both matter.
        using var input = torch.randn(new long[] { 3, 5, 16 }, generator: new Generator(3, CPU)) * 3 + 1;
        var writer = new ProtoGraphWriter(opset, "test");
        string x = writer.Reserve("x");
        writer.Graph.Input.Add(ValueInfo("x"));
        string y = emit(writer, x);
        writer.AddNodeWithOutput("Identity", new[] { y }, writer.Reserve("y"));
        writer.Graph.Output.Add(ValueInfo("y"));
        var model = new ModelProto { IrVersion = 8, Graph = writer.Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });

        using var session = new InferenceSession(model.ToByteArray());
        var values = input.data<float>().ToArray();
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(values, new[] { 3, 5, 16 })) });
        var actual = results[0].AsTensor<float>().ToArray();
        float[] expected;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
            expected = reference(input).data<float>().ToArray();
        float delta = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(delta <= 1e-5f, $"opset {opset}: max |Δ| = {delta}");
        Assert.True(expected.Distinct().Count() > 100, "the reference output is degenerate");
    }

    private static ValueInfoProto ValueInfo(string name)
    {
        var shape = new TensorShapeProto();
        foreach (string d in new[] { "n", "l", "h" })
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
