namespace MLExtensions.Core;

/// <summary>
/// Derives independent, reproducible seeds from a run's seed (SplitMix64 finalizer).
/// </summary>
/// <remarks>
/// <see cref="HashCode.Combine{T1, T2}"/> must not be used for this: .NET randomizes it per process, so the
/// same seed would shuffle differently in every process and a resumed run would not match.
/// </remarks>
public static class Seeds
{
    /// <summary>A seed for <paramref name="purpose"/> in epoch <paramref name="epoch"/> of the run seeded with <paramref name="seed"/>.</summary>
    public static int Derive(int seed, int purpose, int epoch = 0)
    {
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)(uint)purpose * 0xBF58476D1CE4E5B9UL + (ulong)(uint)epoch * 0x94D049BB133111EBUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>Purpose code for per-epoch shuffling.</summary>
    public const int Shuffle = 1;

    /// <summary>Purpose code for the sentence rows a distillation adds to a text transfer set.</summary>
    public const int SentenceRows = 2;
}
