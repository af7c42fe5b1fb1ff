using TorchSharp.Modules;

namespace MLExtensions.Onnx.Export;

/// <summary>Element-wise activations. GELU is written out with Erf, which every opset from 9 has.</summary>
internal static class ActivationExporter
{
    public static string Relu(IOnnxGraphWriter writer, string input, string name) => writer.AddNode("Relu", new[] { input }, name);

    public static string Tanh(IOnnxGraphWriter writer, string input, string name) => writer.AddNode("Tanh", new[] { input }, name);

    public static string Sigmoid(IOnnxGraphWriter writer, string input, string name) => writer.AddNode("Sigmoid", new[] { input }, name);

    public static string LeakyRelu(IOnnxGraphWriter writer, LeakyReLU module, string input, string name) =>
        writer.AddNode("LeakyRelu", new[] { input }, name, NodeAttribute.Of("alpha", (float)module.negative_slope));

    public static string Gelu(IOnnxGraphWriter writer, GELU module, string input, string name)
    {
        return module.approximate == GELU.Approximate.tanh ? GeluTanh(writer, input, name) : Gelu(writer, input, name);
    }

    /// <summary>GELU's tanh approximation: ½ · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).</summary>
    public static string GeluTanh(IOnnxGraphWriter writer, string input, string name)
    {
        string square = writer.AddNode("Mul", new[] { input, input }, name + ".x2");
        string cube = writer.AddNode("Mul", new[] { square, input }, name + ".x3");
        string cubic = writer.AddNode("Mul", new[] { cube, writer.AddScalar(name + ".c", 0.044715f) }, name + ".cubic");
        string inner = writer.AddNode("Add", new[] { input, cubic }, name + ".inner");
        string scaled = writer.AddNode("Mul", new[] { inner, writer.AddScalar(name + ".sqrt_2_pi", (float)Math.Sqrt(2 / Math.PI)) }, name + ".scaled");
        string tanh = writer.AddNode("Tanh", new[] { scaled }, name + ".tanh");
        string onePlus = writer.AddNode("Add", new[] { tanh, writer.AddScalar(name + ".one", 1f) }, name + ".one_plus");
        string half = writer.AddNode("Mul", new[] { input, writer.AddScalar(name + ".half", 0.5f) }, name + ".half_x");
        return writer.AddNode("Mul", new[] { half, onePlus }, name);
    }

    /// <summary>Exact GELU: (x · (1 + erf(x / √2))) · ½.</summary>
    /// <remarks>
    /// Written in exactly this order (Div → Erf → Add → Mul by x → Mul by ½), the form PyTorch's exporter produces, because
    /// ONNX Runtime's graph optimizer recognises it and replaces the five nodes by one Gelu kernel (BiasGelu when a bias
    /// Add precedes it); a mathematically equal arrangement such as Mul by 1/√2 is left as five separate kernels.
    /// </remarks>
    public static string Gelu(IOnnxGraphWriter writer, string input, string name)
    {
        string scaled = writer.AddNode("Div", new[] { input, writer.AddScalar(name + ".sqrt2", (float)Math.Sqrt(2)) }, name + ".scaled");
        string erf = writer.AddNode("Erf", new[] { scaled }, name + ".erf");
        string onePlus = writer.AddNode("Add", new[] { erf, writer.AddScalar(name + ".one", 1f) }, name + ".one_plus");
        string product = writer.AddNode("Mul", new[] { input, onePlus }, name + ".x_one_plus");
        return writer.AddNode("Mul", new[] { product, writer.AddScalar(name + ".half", 0.5f) }, name);
    }
}
