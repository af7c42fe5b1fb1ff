using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MLExtensions.Core.Distributed;

/// <summary>
/// Checks at the start of training that every rank runs the same training: same seed, batch size, optimizer, data size and
/// network. Ranks that disagree would wait for each other in mismatched collectives or silently train different models;
/// instead every rank gets the same exception naming the first setting that differs and each rank's value.
/// </summary>
internal static class RankAgreement
{
    /// <summary>A setting to compare and how to show its value.</summary>
    internal readonly record struct Setting(string Name, double Value, string? Text = null);

    /// <summary>The settings that must be equal on every rank for a training run.</summary>
    public static IReadOnlyList<Setting> Describe(TrainingRun run, long? trainingRows, long? validationRows)
    {
        var o = run.Options;
        var dp = o.DataParallel!;
        var parameters = run.Task.Network.named_parameters().ToList();
        string shapes = string.Join(",", parameters.Select(p => $"{p.name}[{string.Join('x', p.parameter.shape)}]"));
        return new Setting[]
        {
            new("Seed", run.Seed),
            new("BatchSize", o.BatchSize),
            new("Epochs", o.Epochs),
            new("GradientAccumulationSteps", o.GradientAccumulationSteps),
            new("Optimizer.Kind", (int)o.Optimizer.Kind, o.Optimizer.Kind.ToString()),
            new("Optimizer.LearningRate", o.Optimizer.LearningRate),
            new("LearningRateSchedule.Kind", (int)o.LearningRateSchedule.Kind, o.LearningRateSchedule.Kind.ToString()),
            new("GradientClippingNorm", o.GradientClippingNorm ?? -1, o.GradientClippingNorm?.ToString(CultureInfo.InvariantCulture) ?? "null"),
            new("Shuffle", o.Shuffle ? 1 : 0, o.Shuffle.ToString()),
            new("DataParallel.BucketSizeMegabytes", dp.BucketSizeMegabytes),
            new("DataParallel.AverageGradients", dp.AverageGradients ? 1 : 0, dp.AverageGradients.ToString()),
            new("DataParallel.ScaleLearningRate", dp.ScaleLearningRate ? 1 : 0, dp.ScaleLearningRate.ToString()),
            new("DataParallel.SyncBatchNorm", dp.SyncBatchNorm ? 1 : 0, dp.SyncBatchNorm.ToString()),
            new("training rows", trainingRows ?? -1),
            new("validation rows", validationRows ?? -1),
            new("network parameter tensors", parameters.Count),
            new("network parameter count", parameters.Sum(p => (double)p.parameter.numel())),
            new("network parameter names and shapes", Hash48(shapes), $"hash {Hash48(shapes):F0}"),
        };
    }

    /// <summary>Throws the same <see cref="InvalidOperationException"/> on every rank when any setting differs between ranks.</summary>
    public static void Check(MpiCommunicator communicator, IReadOnlyList<Setting> settings)
    {
        var all = communicator.Gather(settings.Select(s => s.Value).ToArray());
        int n = settings.Count;
        for (int i = 0; i < n; i++)
        {
            var values = Enumerable.Range(0, communicator.Size).Select(r => all[r * n + i]).ToArray();
            if (values.All(v => v.Equals(values[0])))
                continue;
            // Every rank knows only its own text; the numbers are shown for the others.
            string Show(int rank) => rank == communicator.Rank && settings[i].Text is { } text
                ? text : values[rank].ToString("R", CultureInfo.InvariantCulture);
            string found = string.Join(", ", Enumerable.Range(0, communicator.Size).Select(r => $"rank {r} has {Show(r)}"));
            throw new InvalidOperationException(
                $"The data-parallel ranks disagree on {settings[i].Name}: {found}. Every rank must run the same program with the same " +
                "options and the same data.");
        }
    }

    /// <summary>48 bits of SHA-256: exact as a double, so it can be compared through MPI.</summary>
    internal static double Hash48(string text)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        long value = 0;
        for (int i = 0; i < 6; i++)
            value = (value << 8) | hash[i];
        return value;
    }
}
