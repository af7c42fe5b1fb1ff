namespace MLExtensions.Explainability;

/// <summary>
/// The coalitions KernelSHAP evaluates and their regression weights, chosen as shap's KernelExplainer does: subset sizes are
/// taken from the smallest (paired with the complementary size) and enumerated completely while the budget covers the
/// size's share of the Shapley kernel; the remaining budget is drawn at random from the remaining kernel mass, each draw
/// paired with its complement, repeats adding weight.
/// </summary>
internal static class Coalitions
{
    /// <summary>Coalitions (true = the player takes the row's value) and weights summing to 1.</summary>
    public static (List<bool[]> Masks, List<double> Weights) Choose(int players, int samples, Random random)
    {
        var masks = new List<bool[]>();
        var weights = new List<double>();
        if (players < 2)
            return (masks, weights);
        long all = players >= 62 ? long.MaxValue : (1L << players) - 2;
        if (samples >= all)
        {
            EnumerateAll(players, masks, weights);
            return (masks, weights);
        }

        int sizes = (players - 1 + 1) / 2;   // ceil((M − 1) / 2)
        int paired = (players - 1) / 2;       // floor((M − 1) / 2)
        var kernel = new double[sizes];
        for (int s = 1; s <= sizes; s++)
            kernel[s - 1] = (players - 1.0) / (s * (double)(players - s)) * (s <= paired ? 2 : 1);
        double total = kernel.Sum();
        for (int i = 0; i < sizes; i++)
            kernel[i] /= total;

        int left = samples;
        int complete = 0;
        var remaining = (double[])kernel.Clone();
        for (int s = 1; s <= sizes; s++)
        {
            double subsets = Binomial(players, s) * (s <= paired ? 2 : 1);
            if (left * remaining[s - 1] / remaining.Skip(s - 1).Sum() < subsets - 1e-8)
                break;
            complete = s;
            double weight = kernel[s - 1] / subsets;
            foreach (var mask in SubsetsOfSize(players, s))
            {
                masks.Add(mask);
                weights.Add(weight);
                if (s <= paired)
                {
                    masks.Add(mask.Select(b => !b).ToArray());
                    weights.Add(weight);
                }
            }
            left -= (int)subsets;
        }

        if (complete < sizes && left > 0)
        {
            double[] rest = kernel.Skip(complete).ToArray();
            double restMass = rest.Sum();
            var drawn = new Dictionary<string, int>();
            var sampled = new List<bool[]>();
            var counts = new List<double>();
            int budget = left;
            int attempts = 0;
            while (budget > 0 && attempts < 4 * left + 100)
            {
                attempts++;
                int size = complete + 1 + Draw(rest, restMass, random);
                var mask = RandomSubset(players, size, random);
                AddSample(mask, sampled, counts, drawn, ref budget);
                // The complement carries the same kernel weight; shap adds it with every draw of a paired size.
                if (budget > 0 && size <= paired)
                    AddSample(mask.Select(b => !b).ToArray(), sampled, counts, drawn, ref budget);
            }
            double countTotal = counts.Sum();
            for (int i = 0; i < sampled.Count; i++)
            {
                masks.Add(sampled[i]);
                weights.Add(counts[i] / countTotal * restMass);
            }
        }
        double sum = weights.Sum();
        for (int i = 0; i < weights.Count; i++)
            weights[i] /= sum;
        return (masks, weights);
    }

    private static void AddSample(bool[] mask, List<bool[]> sampled, List<double> counts, Dictionary<string, int> drawn, ref int budget)
    {
        string key = new(mask.Select(b => b ? '1' : '0').ToArray());
        if (drawn.TryGetValue(key, out int index))
        {
            counts[index] += 1;
            return;
        }
        drawn[key] = sampled.Count;
        sampled.Add(mask);
        counts.Add(1);
        budget--;
    }

    /// <summary>Every coalition except the empty and the full one, weighted by the Shapley kernel: exact Shapley values.</summary>
    private static void EnumerateAll(int players, List<bool[]> masks, List<double> weights)
    {
        for (long bits = 1; bits < (1L << players) - 1; bits++)
        {
            var mask = new bool[players];
            int size = 0;
            for (int j = 0; j < players; j++)
            {
                mask[j] = (bits >> j & 1) == 1;
                size += mask[j] ? 1 : 0;
            }
            masks.Add(mask);
            weights.Add((players - 1.0) / (Binomial(players, size) * size * (players - size)));
        }
        double sum = weights.Sum();
        for (int i = 0; i < weights.Count; i++)
            weights[i] /= sum;
    }

    private static int Draw(double[] probabilities, double total, Random random)
    {
        double u = random.NextDouble() * total;
        for (int i = 0; i < probabilities.Length; i++)
        {
            u -= probabilities[i];
            if (u <= 0)
                return i;
        }
        return probabilities.Length - 1;
    }

    private static bool[] RandomSubset(int players, int size, Random random)
    {
        var order = Enumerable.Range(0, players).ToArray();
        random.Shuffle(order);
        var mask = new bool[players];
        for (int i = 0; i < size; i++)
            mask[order[i]] = true;
        return mask;
    }

    private static IEnumerable<bool[]> SubsetsOfSize(int players, int size)
    {
        var chosen = Enumerable.Range(0, size).ToArray();
        while (true)
        {
            var mask = new bool[players];
            foreach (int c in chosen)
                mask[c] = true;
            yield return mask;
            int i = size - 1;
            while (i >= 0 && chosen[i] == players - size + i)
                i--;
            if (i < 0)
                yield break;
            chosen[i]++;
            for (int j = i + 1; j < size; j++)
                chosen[j] = chosen[j - 1] + 1;
        }
    }

    public static double Binomial(int n, int k)
    {
        double result = 1;
        for (int i = 1; i <= k; i++)
            result = result * (n - k + i) / i;
        return result;
    }
}
