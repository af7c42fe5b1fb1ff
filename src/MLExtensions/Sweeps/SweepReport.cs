using System.Globalization;
using System.Text;
using MLExtensions.Onnx.Export;
using ScottPlot;

namespace MLExtensions.Sweeps;

/// <summary>The files of <see cref="SweepResult.SaveReport"/>: tables and PNG charts.</summary>
internal static class SweepReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static IReadOnlyList<string> Save(SweepResult result, string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Directory.CreateDirectory(folder);
        var written = new List<string>
        {
            WriteText(Path.Combine(folder, "trials.csv"), Csv(result)),
            WriteText(Path.Combine(folder, "trials.md"), Markdown(result)),
            MetricPerTrial(result, Path.Combine(folder, "metric_per_trial.png")),
            LearningCurves(result, Path.Combine(folder, "learning_curves.png")),
            ImportanceChart(result, Path.Combine(folder, "parameter_importance.png")),
        };
        return written;
    }

    private static string[] Columns(SweepResult r) =>
        new[] { "Trial", "Status", r.Metric.ToString(), "Steps", "Resource", "Seconds" }.Concat(r.BestParameters.Names).Append("Error").ToArray();

    private static IEnumerable<string[]> Rows(SweepResult r) => r.Trials.Select(t => new[]
        {
            t.Index.ToString(Invariant), t.Status.ToString(), t.Metric.ToString("G6", Invariant), t.IntermediateValues.Count.ToString(Invariant),
            t.ResourceUsed.ToString("G4", Invariant), t.Duration.TotalSeconds.ToString("F1", Invariant),
        }.Concat(t.Parameters.Names.Select(n => SweepParameters.FormatShort(t.Parameters[n]))).Append(t.Error ?? "").ToArray());

    private static string Csv(SweepResult r)
    {
        static string Quote(string s) => s.IndexOfAny(new[] { ',', '"', '\n' }) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
        var text = new StringBuilder().AppendLine(string.Join(",", Columns(r).Select(Quote)));
        foreach (var row in Rows(r))
            text.AppendLine(string.Join(",", row.Select(Quote)));
        return text.ToString();
    }

    private static string Markdown(SweepResult r)
    {
        static string Cell(string s) => s.Replace("|", "\\|").Replace("\n", " ");
        var text = new StringBuilder()
            .AppendLine($"Best {r.Metric}: {r.BestMetric.ToString("G6", Invariant)} (trial {r.BestTrial.Index}: {r.BestParameters})")
            .AppendLine()
            .AppendLine("| " + string.Join(" | ", Columns(r)) + " |")
            .AppendLine("|" + string.Concat(Enumerable.Repeat("---|", Columns(r).Length)));
        foreach (var row in Rows(r))
            text.AppendLine("| " + string.Join(" | ", row.Select(Cell)) + " |");
        return text.ToString();
    }

    private static string MetricPerTrial(SweepResult r, string path)
    {
        var plot = new Plot();
        var completed = r.Trials.Where(t => t.Status == TrialStatus.Completed).ToList();
        var points = plot.Add.ScatterPoints(completed.Select(t => (double)t.Index).ToArray(), completed.Select(t => t.Metric).ToArray());
        points.LegendText = "completed";
        points.MarkerSize = 8;
        // A pruned trial has no final metric; its last intermediate value shows how far it was from the others
        // (in the same units when the intermediate metric is the sweep metric).
        var pruned = r.Trials.Where(t => t.Status == TrialStatus.Pruned && t.IntermediateValues.Count > 0).ToList();
        if (pruned.Count > 0)
        {
            var marks = plot.Add.ScatterPoints(pruned.Select(t => (double)t.Index).ToArray(), pruned.Select(t => t.IntermediateValues[^1]).ToArray());
            marks.LegendText = $"pruned (last intermediate {pruned[0].IntermediateMetricName})";
            marks.MarkerShape = MarkerShape.Cross;
            marks.MarkerSize = 10;
            marks.Color = Colors.Red;
        }
        var failed = r.Trials.Where(t => t.Status == TrialStatus.Failed).ToList();
        foreach (var t in failed)
            plot.Add.VerticalLine(t.Index, pattern: LinePattern.Dotted, color: Colors.Gray);
        if (completed.Count > 0)
        {
            double best = double.NaN;
            var xs = new List<double>();
            var ys = new List<double>();
            foreach (var t in r.Trials)
            {
                if (t.Status == TrialStatus.Completed && (double.IsNaN(best) || (r.HigherIsBetter ? t.Metric > best : t.Metric < best)))
                    best = t.Metric;
                if (!double.IsNaN(best))
                {
                    xs.Add(t.Index);
                    ys.Add(best);
                }
            }
            var line = plot.Add.ScatterLine(xs.ToArray(), ys.ToArray());
            line.LegendText = "best so far";
            line.ConnectStyle = ConnectStyle.StepHorizontal;
        }
        plot.Title(failed.Count > 0 ? $"{r.Metric} per trial (dotted: {failed.Count} failed)" : $"{r.Metric} per trial");
        plot.XLabel("trial (time order)");
        plot.YLabel(r.Metric.ToString());
        plot.ShowLegend();
        return Png(plot, path, 900, 500);
    }

    private static string LearningCurves(SweepResult r, string path)
    {
        var plot = new Plot();
        foreach (var t in r.Trials.Where(t => t.IntermediateValues.Count > 0))
        {
            double[] steps = Enumerable.Range(1, t.IntermediateValues.Count).Select(i => (double)i).ToArray();
            var line = plot.Add.Scatter(steps, t.IntermediateValues.ToArray());
            line.MarkerSize = 3;
            line.LinePattern = t.Status == TrialStatus.Pruned ? LinePattern.Dashed : LinePattern.Solid;
            if (t == r.BestTrial)
            {
                line.LineWidth = 3;
                line.LegendText = $"best (trial {t.Index})";
            }
        }
        var any = r.Trials.FirstOrDefault(t => t.IntermediateValues.Count > 0);
        bool rows = any?.Resource == SweepResource.RowFraction;
        plot.Title("Learning curves (dashed: pruned)");
        plot.XLabel(rows ? "subsample (1 = 1/9, 2 = 1/3, 3 = all rows)" : "epoch");
        plot.YLabel(any is null ? "" : $"validation {any.IntermediateMetricName}");
        plot.ShowLegend();
        return Png(plot, path, 900, 500);
    }

    private static string ImportanceChart(SweepResult r, string path)
    {
        var importance = Importance(r);
        var plot = new Plot();
        var names = importance.Keys.ToArray();
        var bars = plot.Add.Bars(importance.Values.ToArray());
        bars.Horizontal = true;
        plot.Axes.Left.SetTicks(Enumerable.Range(0, names.Length).Select(i => (double)i).ToArray(), names);
        plot.Axes.Margins(left: 0);
        plot.Title($"Parameter importance (η² of {r.Metric})");
        plot.XLabel("importance");
        return Png(plot, path, 800, 150 + 40 * names.Length);
    }

    /// <summary>Correlation ratio η² per parameter over completed trials, normalised to sum to 1.</summary>
    public static IReadOnlyDictionary<string, double> Importance(SweepResult r)
    {
        var trials = r.Trials.Where(t => t.Status == TrialStatus.Completed && double.IsFinite(t.Metric)).ToList();
        var names = r.BestParameters.Names;
        var raw = new double[names.Count];
        if (trials.Count >= 3)
        {
            double mean = trials.Average(t => t.Metric);
            double total = trials.Sum(t => (t.Metric - mean) * (t.Metric - mean));
            for (int p = 0; p < names.Count && total > 0; p++)
            {
                var groups = Groups(trials, p);
                raw[p] = groups.Sum(g => g.Count * Math.Pow(g.Average(t => t.Metric) - mean, 2)) / total;
            }
        }
        double sum = raw.Sum();
        return names.Select((n, i) => (n, v: sum > 0 ? raw[i] / sum : 0)).ToDictionary(x => x.n, x => x.v);
    }

    /// <summary>
    /// Trials grouped by a parameter: by value for choices and small integer ranges, else by quantile of the coordinate
    /// (up to quartiles, at least 3 trials per group on average, so a handful of trials does not make every numeric
    /// parameter look decisive).
    /// </summary>
    private static List<List<SweepTrial>> Groups(List<SweepTrial> trials, int p)
    {
        var distinct = trials.Select(t => t.Parameters.Coordinates[p]).Distinct().Count();
        if (distinct <= 4)
            return trials.GroupBy(t => t.Parameters.Coordinates[p]).Select(g => g.ToList()).ToList();
        int bins = Math.Clamp(trials.Count / 3, 2, 4);
        var ordered = trials.OrderBy(t => t.Parameters.Coordinates[p]).ToList();
        return Enumerable.Range(0, bins).Select(q => ordered.Skip(q * ordered.Count / bins).Take((q + 1) * ordered.Count / bins - q * ordered.Count / bins).ToList())
            .Where(g => g.Count > 0).ToList();
    }

    private static string WriteText(string path, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        AtomicFile.Write(path, s => s.Write(bytes), "the sweep report");
        return path;
    }

    private static string Png(Plot plot, string path, int width, int height)
    {
        byte[] bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes), "the sweep report");
        return path;
    }
}
