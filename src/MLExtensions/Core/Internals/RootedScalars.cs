using TorchSharp;

namespace MLExtensions.Core;

/// <summary>
/// Scalars that live as long as the process, for the hottest tensor operations.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns numbers into <see cref="Scalar"/> objects that only the garbage collector frees, and an operator
/// such as <c>tensor + tensor</c> hands a fresh Scalar (alpha = 1) to native code with nothing keeping it alive during the
/// call; a collection at that moment can free it under libtorch's feet (TorchSharp pull requests #1434 and #1496). A teacher
/// pass over 65,000 reviews once died of it ("Expected false to be true … toFloat at c10/core/Scalar.h"). The encoder's
/// per-layer operations therefore pass these rooted Scalars explicitly.
/// </remarks>
internal static class RootedScalars
{
    /// <summary>1, the alpha of a plain tensor addition.</summary>
    public static readonly Scalar One = 1;

    /// <summary>The additive attention score of a padding key: large enough to vanish in the softmax, finite in float32.</summary>
    public static readonly Scalar MaskedScore = -1e9f;

    /// <summary>Lower bound of a token count used as a divisor.</summary>
    public static readonly Scalar Tiny = 1e-9;
}
