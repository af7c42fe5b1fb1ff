namespace MLExtensions.Explainability;

/// <summary>
/// <see cref="ExplanationOptions.FeatureGroups"/> that make KernelSHAP's players square-ish patches of an image given as
/// a pixel vector (C×H×W, channel-major, as the library's image columns): an absent patch takes the reference's pixels
/// (the background rows, their mean with <see cref="BaselineKind.Background"/> and one background row, zeros or a given
/// baseline), all channels together. For an MLImage column, patches are the players by default (a 4×4 grid); these
/// groups over its 3×H×W values choose another grid.
/// </summary>
public static class ImagePatches
{
    /// <summary>
    /// A <paramref name="gridRows"/> × <paramref name="gridColumns"/> grid of patches (default 4 × 4, i.e. 16 players),
    /// row by row from the top left; edges that do not divide evenly go to the last row and column of patches.
    /// </summary>
    /// <param name="channels">Channels of the image.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="gridRows">Patches per column of the grid, 1 to <paramref name="height"/>.</param>
    /// <param name="gridColumns">Patches per row of the grid, 1 to <paramref name="width"/>.</param>
    /// <returns>One group of slot indices per patch.</returns>
    public static int[][] Groups(int channels, int height, int width, int gridRows = 4, int gridColumns = 4)
    {
        MLExtensions.Core.Check.Positive(channels, nameof(channels));
        MLExtensions.Core.Check.Positive(height, nameof(height));
        MLExtensions.Core.Check.Positive(width, nameof(width));
        if (gridRows < 1 || gridRows > height)
            throw new ArgumentOutOfRangeException(nameof(gridRows), gridRows, $"gridRows must be between 1 and the image height ({height}); found {gridRows}.");
        if (gridColumns < 1 || gridColumns > width)
            throw new ArgumentOutOfRangeException(nameof(gridColumns), gridColumns, $"gridColumns must be between 1 and the image width ({width}); found {gridColumns}.");
        int patchHeight = height / gridRows, patchWidth = width / gridColumns;
        var groups = new List<int>[gridRows * gridColumns];
        for (int i = 0; i < groups.Length; i++)
            groups[i] = new List<int>();
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                int patchRow = Math.Min(y / patchHeight, gridRows - 1);
                for (int x = 0; x < width; x++)
                {
                    int patchColumn = Math.Min(x / patchWidth, gridColumns - 1);
                    groups[patchRow * gridColumns + patchColumn].Add((c * height + y) * width + x);
                }
            }
        }
        return groups.Select(g => g.ToArray()).ToArray();
    }
}
