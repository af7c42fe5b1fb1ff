using MLExtensions.Core;
using ScottPlot;

namespace MLExtensions.Samples;

/// <summary>PNG charts of what people look at after training.</summary>
internal static class Charts
{
    /// <summary>Training and validation loss per epoch (and the validation metric on a second axis).</summary>
    public static void TrainingCurves(TrainingState state, string path)
    {
        var plot = new Plot();
        double[] epochs = state.History.Select(h => (double)h.Epoch).ToArray();
        var train = plot.Add.Scatter(epochs, state.History.Select(h => h.TrainingLoss).ToArray());
        train.LegendText = "training loss";
        if (state.History.All(h => h.ValidationLoss.HasValue))
        {
            var validation = plot.Add.Scatter(epochs, state.History.Select(h => h.ValidationLoss!.Value).ToArray());
            validation.LegendText = "validation loss";
            var metric = plot.Add.Scatter(epochs, state.History.Select(h => h.ValidationMetric!.Value).ToArray());
            metric.LegendText = $"validation {state.MetricName.ToLowerInvariant()}";
            metric.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = state.MetricName;
        }
        if (state.BestEpoch > 0)
            plot.Add.VerticalLine(state.BestEpoch, pattern: LinePattern.Dashed).LegendText = $"kept epoch {state.BestEpoch}";
        plot.Title("Training curves");
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.ShowLegend();
        plot.SavePng(path, 900, 500);
    }

    /// <summary>A confusion matrix as a heatmap with counts: rows are true classes, columns predicted classes.</summary>
    public static void ConfusionMatrix(IReadOnlyList<IReadOnlyList<double>> counts, IReadOnlyList<string> classes, string path) =>
        Heatmap(counts, classes, classes, "0", "predicted", "true", "Confusion matrix (test set)", path);

    /// <summary>A matrix of values as a heatmap with the values written in the cells (light = low, dark = high).</summary>
    public static void Heatmap(IReadOnlyList<IReadOnlyList<double>> cells, IReadOnlyList<string> rows, IReadOnlyList<string> columns,
        string format, string xLabel, string yLabel, string title, string path)
    {
        int k = rows.Count, m = columns.Count;
        var values = new double[k, m];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < m; j++)
                values[i, j] = cells[i][j];
        var plot = new Plot();
        var map = plot.Add.Heatmap(values);
        map.Colormap = new ScottPlot.Colormaps.Blues().Reversed(); // light = few, dark = many
        map.FlipVertically = false;
        double max = cells.SelectMany(r => r).DefaultIfEmpty(0).Max(), min = cells.SelectMany(r => r).DefaultIfEmpty(0).Min();
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < m; j++)
            {
                var label = plot.Add.Text(cells[i][j].ToString(format), j, k - 1 - i);
                label.Alignment = Alignment.MiddleCenter;
                label.LabelFontColor = cells[i][j] > (max + min) / 2 ? Colors.White : Colors.Black; // readable on dark cells
            }
        }
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, m).Select(i => (double)i).ToArray(), columns.ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, k).Select(i => (double)(k - 1 - i)).ToArray(), rows.ToArray());
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.Title(title);
        plot.SavePng(path, 250 + 70 * m, 200 + 70 * k);
    }
}
