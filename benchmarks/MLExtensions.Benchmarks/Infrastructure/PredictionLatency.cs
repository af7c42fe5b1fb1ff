using System.Diagnostics;
using Microsoft.ML;

namespace MLExtensions.Benchmarks.Infrastructure;

/// <summary>Single-row latency of a model through ML.NET's <c>PredictionEngine</c>, as an application would call it.</summary>
internal static class PredictionLatency
{
    /// <summary>
    /// Median milliseconds of one <c>Predict</c> over <paramref name="timedRows"/> rows, after two seconds of warm-up on the first
    /// 20. Warm up for a fixed time, not a fixed row count: right after <c>Evaluate</c>, single-row torch calls run 2–3× slower for
    /// about a second (seen with a separate timing program; the cause was not pinned down, it does not occur with one torch
    /// thread). A small student's few hundred timed rows fit inside that second and a teacher's do not, which skewed the ratio.
    /// </summary>
    public static double MedianMilliseconds<TRow, TPrediction>(MLContext ml, ITransformer model, IReadOnlyList<TRow> rows, int timedRows)
        where TRow : class
        where TPrediction : class, new()
    {
        var engine = ml.Model.CreatePredictionEngine<TRow, TPrediction>(model);
        var warmUp = Stopwatch.StartNew();
        for (int i = 0; warmUp.Elapsed < TimeSpan.FromSeconds(2); i++)
            engine.Predict(rows[i % 20]);
        var times = rows.Skip(20).Take(timedRows).Select(row =>
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(row);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }).ToList();
        return Statistics.Median(times);
    }
}
