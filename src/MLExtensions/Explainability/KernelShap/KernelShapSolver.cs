namespace MLExtensions.Explainability;

/// <summary>
/// KernelSHAP's regression: weighted least squares of the coalition values on the coalition masks, with the constraint
/// that the values sum to f(x) − E[f] (the last player is eliminated, as in shap). No L1 selection: every player is kept.
/// </summary>
internal static class KernelShapSolver
{
    /// <param name="masks">Coalitions.</param>
    /// <param name="weights">Their weights.</param>
    /// <param name="values">Linked value of each coalition (mean output over the references with the coalition's players from x).</param>
    /// <param name="full">Linked f(x).</param>
    /// <param name="empty">Linked expected output over the references.</param>
    public static double[] Solve(IReadOnlyList<bool[]> masks, IReadOnlyList<double> weights, IReadOnlyList<double> values, double full, double empty)
    {
        double delta = full - empty;
        int players = masks.Count == 0 ? 1 : masks[0].Length;
        if (players == 1 || masks.Count == 0)
            return players == 1 ? new[] { delta } : new double[players];
        int free = players - 1;
        var normal = new double[free, free];
        var rhs = new double[free];
        var row = new double[free];
        for (int n = 0; n < masks.Count; n++)
        {
            var mask = masks[n];
            double last = mask[free] ? 1 : 0;
            for (int j = 0; j < free; j++)
                row[j] = (mask[j] ? 1 : 0) - last;
            double y = values[n] - empty - last * delta;
            double w = weights[n];
            for (int i = 0; i < free; i++)
            {
                if (row[i] == 0)
                    continue;
                rhs[i] += w * row[i] * y;
                for (int j = 0; j < free; j++)
                    normal[i, j] += w * row[i] * row[j];
            }
        }
        var phi = SolveLinear(normal, rhs);
        var result = new double[players];
        Array.Copy(phi, result, free);
        result[free] = delta - phi.Sum();
        return result;
    }

    /// <summary>Gaussian elimination with partial pivoting; a (near-)singular direction gets 0.</summary>
    private static double[] SolveLinear(double[,] a, double[] b)
    {
        int n = b.Length;
        var m = (double[,])a.Clone();
        var v = (double[])b.Clone();
        double scale = 0;
        for (int i = 0; i < n; i++)
            scale = Math.Max(scale, Math.Abs(m[i, i]));
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++)
            {
                if (Math.Abs(m[r, col]) > Math.Abs(m[pivot, col]))
                    pivot = r;
            }
            if (Math.Abs(m[pivot, col]) <= 1e-12 * Math.Max(scale, 1e-300))
                continue;
            if (pivot != col)
            {
                for (int c = 0; c < n; c++)
                    (m[col, c], m[pivot, c]) = (m[pivot, c], m[col, c]);
                (v[col], v[pivot]) = (v[pivot], v[col]);
            }
            for (int r = 0; r < n; r++)
            {
                if (r == col || m[r, col] == 0)
                    continue;
                double factor = m[r, col] / m[col, col];
                for (int c = col; c < n; c++)
                    m[r, c] -= factor * m[col, c];
                v[r] -= factor * v[col];
            }
        }
        var x = new double[n];
        for (int i = 0; i < n; i++)
            x[i] = Math.Abs(m[i, i]) > 1e-12 * Math.Max(scale, 1e-300) ? v[i] / m[i, i] : 0;
        return x;
    }
}
