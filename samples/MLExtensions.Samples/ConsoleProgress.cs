using MLExtensions.Core;
using ShellProgressBar;

namespace MLExtensions.Samples;

/// <summary>Shows training progress as a console progress bar (one tick per epoch, batch detail in the message).</summary>
internal sealed class ConsoleProgress : IProgress<TrainingProgress>, IDisposable
{
    private readonly ProgressBar _bar;

    public ConsoleProgress(int epochs, string title)
    {
        _bar = new ProgressBar(epochs, title, new ProgressBarOptions
        {
            ProgressCharacter = '─',
            CollapseWhenFinished = false,
            DisplayTimeInRealTime = false,
            // Redirected output (CI logs) gets plain lines instead of cursor movements.
            DisableBottomPercentage = false,
        });
    }

    public void Report(TrainingProgress p)
    {
        string metric = p.ValidationMetric is double m ? $", validation {p.MetricName.ToLowerInvariant()} {m:P1}" : "";
        switch (p.Phase)
        {
            case TrainingPhase.Batch:
                _bar.Message = $"epoch {p.Epoch}: batch {p.BatchInEpoch}/{p.BatchesPerEpoch}, loss {p.TrainingLoss:F4}";
                break;
            case TrainingPhase.EpochEnd:
                _bar.Tick($"epoch {p.Epoch}/{p.TotalEpochs}: loss {p.TrainingLoss:F4}{metric}, {p.SamplesPerSecond:F0} rows/s");
                break;
            case TrainingPhase.Completed:
                _bar.Tick(_bar.MaxTicks, $"done: kept epoch {p.Epoch}{metric}");
                break;
        }
    }

    public void Dispose() => _bar.Dispose();
}
