namespace MLExtensions.Explainability;

/// <summary>
/// Gauss–Legendre quadrature on [0, 1]: n nodes and weights that integrate polynomials of degree 2n − 1 exactly.
/// The weights sum to 1, so integrated gradients are exact for a linear model whatever the number of steps (captum's
/// Riemann rules sum to 1 − 1/n).
/// </summary>
internal static class GaussLegendre
{
    /// <summary>Nodes (ascending) and weights on [0, 1].</summary>
    public static (double[] Nodes, double[] Weights) Unit(int n)
    {
        var nodes = new double[n];
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            // Newton's method on P_n from Tricomi's approximation of the i-th root (on [−1, 1], descending).
            double x = Math.Cos(Math.PI * (i + 0.75) / (n + 0.5));
            double derivative = 0;
            for (int iteration = 0; iteration < 100; iteration++)
            {
                (double p, derivative) = Legendre(n, x);
                double step = p / derivative;
                x -= step;
                if (Math.Abs(step) < 1e-15)
                    break;
            }
            (_, derivative) = Legendre(n, x);
            double w = 2 / ((1 - x * x) * derivative * derivative);
            // Map [−1, 1] → [0, 1]: node (1 − x) / 2 ascending, weight halved.
            nodes[i] = (1 - x) / 2;
            weights[i] = w / 2;
        }
        return (nodes, weights);
    }

    /// <summary>P_n(x) and P_n'(x) by the three-term recurrence.</summary>
    private static (double Value, double Derivative) Legendre(int n, double x)
    {
        double previous = 1, current = x;
        if (n == 0)
            return (1, 0);
        for (int k = 2; k <= n; k++)
        {
            double next = ((2 * k - 1) * x * current - (k - 1) * previous) / k;
            previous = current;
            current = next;
        }
        double derivative = n * (x * current - previous) / (x * x - 1);
        return (current, derivative);
    }
}
