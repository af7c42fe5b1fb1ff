using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Text;
using MLExtensions.Vision;

namespace MLExtensions.Benchmarks;

/// <summary>
/// Data-parallel training over Open MPI: the same training with 1 rank and with N ranks (one torch thread each), started by
/// this program under <c>mpirun</c>. Weak scaling, as Horovod reports it: every rank keeps the batch of the single process, so
/// N ranks train on N × the rows per step. Reports samples/s, scaling efficiency (N-rank throughput / (N × 1-rank
/// throughput)), the all-reduce time per step, and the test accuracy after the same number of epochs.
/// </summary>
internal sealed class DistributedBenchmark : IBenchmark
{
    public string Name => "distributed";

    public string Description => "data-parallel training over Open MPI: 1 rank vs N ranks (one thread each), DefaultCnn on Fashion-MNIST and MiniLM fine-tuning";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("part", "name", "cnn, text, all (default), or allreduce: the bare all-reduce of each model's gradient (25 MB buckets) between N ranks"),
        new("ranks", "N", "ranks of the parallel run (default 2)"),
        new("data", "folder", "Fashion-MNIST folder (default ../shared/data/fashion-mnist)"),
        new("reviews", "folder", "fine-food reviews folder (default ../shared/data/fine-foods)"),
        new("cnn-epochs", "N", "DefaultCnn epochs (default 1)"),
        new("cnn-batch", "N", "DefaultCnn batch per rank (default 128)"),
        new("cnn-train", "N", "training images used (default all 60000)"),
        new("text-epochs", "N", "MiniLM fine-tuning epochs (default 1)"),
        new("text-train", "N", "training reviews used (default 2000 of 4000)"),
        new("text-max-length", "N", "MiniLM max tokens (default 128)"),
        new("worker", "part", "internal: run one training as a rank of an mpirun job"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        if (arguments.String("worker") == "allreduce")
        {
            AllreduceWorker();
            return 0;
        }
        if (arguments.String("worker") is { } workerPart)
            return Worker(workerPart, arguments);

        string part = arguments.String("part") ?? "all";
        int ranks = arguments.Int("ranks", 2, minimum: 2);
        if (part == "allreduce")
            return BareAllreduce(ranks, arguments, output);
        output.WriteLine("Benchmark distributed: data-parallel training over Open MPI (weak scaling: batch per rank fixed)");
        output.WriteLine($"  Options: {string.Join(' ', Options.Where(o => arguments.String(o.Name) is not null).Select(o => $"--{o.Name} {arguments.String(o.Name)}"))}");
        output.WriteLine($"  {Environment.ProcessorCount} processors; 1 torch thread per rank; mpirun --bind-to none; load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        output.WriteLine();
        var table = new TextTable("Model", "Ranks", "Global batch", "Samples/s", "Efficiency", "All-reduce ms/step", "Gradient MB/step", "Epoch s", "Test accuracy", "Other load (cores)");
        foreach (string model in part == "all" ? new[] { "cnn", "text" } : new[] { part })
        {
            RankReport? single = null;
            foreach (int n in new[] { 1, ranks })
            {
                var report = Launch(model, n, arguments, output);
                single ??= report;
                double efficiency = report.SamplesPerSecond / (n * single.SamplesPerSecond);
                table.AddRow(model == "cnn" ? "DefaultCnn, Fashion-MNIST" : "MiniLM fine-tuning, reviews", $"{n}", $"{report.GlobalBatch}",
                    $"{report.SamplesPerSecond:F1}", n == 1 ? "-" : $"{efficiency:P1}", $"{1000 * report.CommunicationSeconds / Math.Max(1, report.Steps):F2}",
                    $"{report.GradientMegabytes:F1}", $"{report.EpochSeconds:F0}", $"{report.Accuracy:P2}",
                    report.OtherCores is double other ? $"{other:F2}" : "unknown");
            }
        }
        output.WriteLine();
        output.WriteLine("Results (samples/s and epoch time: the last epoch, slowest rank; efficiency = N-rank samples/s / (N × 1-rank samples/s))");
        table.Write(output);
        return 0;
    }

    /// <summary>
    /// The all-reduce alone, without training: the gradient sizes of both models in 25 MB buckets, 30 times each after a warm-up,
    /// so the cost of the transfer is seen without the wait for a slower rank that the training figures include.
    /// </summary>
    private static int BareAllreduce(int ranks, BenchmarkArguments arguments, TextWriter output)
    {
        output.WriteLine($"Benchmark distributed --part allreduce: {ranks} ranks over shared memory; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        foreach (string a in new[] { "-np", $"{ranks}", "--oversubscribe", "--bind-to", "none", "--mca", "plm", "isolated", "-x", "TERM=dumb",
            "dotnet", typeof(DistributedBenchmark).Assembly.Location, "distributed", "--worker", "allreduce" })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("mpirun could not be started: apt-get install openmpi-bin");
        var stderr = process.StandardError.ReadToEndAsync();
        while (process.StandardOutput.ReadLine() is { } line)
            output.WriteLine("  " + line);
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"The all-reduce job failed ({process.ExitCode}): {stderr.Result}");
        return 0;
    }

    private static void AllreduceWorker()
    {
        var communicator = DataParallel.Communicator;
        const int bucket = 25 * 1024 * 1024 / sizeof(float);
        var table = new TextTable("Gradient", "Floats", "All-reduces", "Median ms", "Min ms", "Max ms", "Effective GB/s (2(N-1)/N·S/t)");
        foreach (var (name, floats) in new[] { ("1,000 floats", 1000L), ("DefaultCnn (1.9 MB)", 468_000L), ("4 M floats (16 MB)", 4L << 20), ("MiniLM-L6 (90.3 MB)", 22_570_000L) })
        {
            var buffer = new float[Math.Min(floats, bucket)];
            var times = new List<double>();
            for (int repeat = -3; repeat < 30; repeat++)
            {
                var barrier = new double[1];
                communicator.SumInPlace(barrier.AsSpan()); // start together
                long begin = Stopwatch.GetTimestamp();
                for (long done = 0; done < floats; done += bucket)
                    communicator.SumInPlace(buffer.AsSpan(0, (int)Math.Min(bucket, floats - done)));
                if (repeat >= 0)
                    times.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
            }
            times.Sort();
            double median = Statistics.Median(times);
            double bytes = 2.0 * (communicator.Size - 1) / communicator.Size * floats * sizeof(float);
            table.AddRow(name, $"{floats}", $"{(floats + bucket - 1) / bucket}", $"{median:F3}", $"{times[0]:F3}", $"{times[^1]:F3}", $"{bytes / (median / 1000) / 1e9:F2}");
        }
        if (communicator.Rank == 0)
            table.Write(Console.Out);
    }

    /// <summary>What rank 0 of a job printed.</summary>
    private sealed record RankReport(int GlobalBatch, double SamplesPerSecond, double EpochSeconds, long Steps, double CommunicationSeconds,
        double GradientMegabytes, double Accuracy, double? OtherCores);

    /// <summary>Runs one training as an mpirun job of <paramref name="ranks"/> copies of this program and reads rank 0's report.</summary>
    private static RankReport Launch(string model, int ranks, BenchmarkArguments arguments, TextWriter output)
    {
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        var args = new List<string> { "-np", $"{ranks}", "--oversubscribe", "--bind-to", "none", "--mca", "plm", "isolated", "-x", "TERM=dumb", "-x", "OMP_NUM_THREADS=1",
            "dotnet", typeof(DistributedBenchmark).Assembly.Location, "distributed", "--worker", model };
        foreach (string name in new[] { "data", "reviews", "cnn-epochs", "cnn-batch", "cnn-train", "text-epochs", "text-train", "text-max-length" })
        {
            if (arguments.String(name) is { } value)
                args.AddRange(new[] { "--" + name, value });
        }
        foreach (string a in args)
            start.ArgumentList.Add(a);
        output.WriteLine($"  {model}, {ranks} rank(s): mpirun {string.Join(' ', args.Skip(0).Take(13))} … --worker {model}");
        var before = CpuLoad.Take();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("mpirun could not be started: apt-get install openmpi-bin");
        var stderr = process.StandardError.ReadToEndAsync();
        string? result = null;
        double childCpu = 0;
        while (process.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith("RESULT ", StringComparison.Ordinal))
                result = line;
            else if (line.StartsWith("CPU ", StringComparison.Ordinal))
                childCpu += double.Parse(line.Split(' ')[2], CultureInfo.InvariantCulture);
            else
                output.WriteLine("    " + line);
        }
        process.WaitForExit();
        var after = CpuLoad.Take();
        if (process.ExitCode != 0 || result is null)
            throw new InvalidOperationException($"The {ranks}-rank {model} job failed ({process.ExitCode}): {stderr.Result}");
        // Other load: machine CPU time minus this driver's and the ranks' own, over the job's wall time.
        double? machineOther = CpuLoad.OtherCores(before, after) is double other
            ? Math.Max(0, other - childCpu / Stopwatch.GetElapsedTime(before.Timestamp, after.Timestamp).TotalSeconds) : null;
        var v = result.Split(' ').Skip(1).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return new RankReport((int)v[0], v[1], v[2], (long)v[3], v[4], v[5], v[6], machineOther);
    }

    /// <summary>One rank: trains, and rank 0 evaluates on the test set and prints the figures on one line.</summary>
    private static int Worker(string part, BenchmarkArguments arguments)
    {
        MLExtensions.Core.Native.TorchNativeLoader.EnsureLoaded();
        TorchSharp.torch.set_num_threads(1);
        int rank = DataParallel.Rank, size = DataParallel.Size;
        var ml = new MLContext(seed: 1);
        var dataParallel = new DataParallelOptions();
        TrainingState state;
        double accuracy = double.NaN;
        int batch;
        long gradientFloats;
        if (part == "cnn")
        {
            var data = FashionMnist.Load(arguments.String("data"), RepositoryPaths.Root());
            var train = ml.Data.LoadFromEnumerable(ImageRow.From(data.Train).Take(arguments.Int("cnn-train", data.Train.Count)));
            var test = ml.Data.LoadFromEnumerable(ImageRow.From(data.Test));
            var options = new ImageClassifierOptions
            {
                ImageColumnName = nameof(ImageRow.Features), ImageChannels = 1, ImageHeight = 28, ImageWidth = 28, PixelScale = 1f,
                Architecture = ImageArchitecture.DefaultCnn,
                Epochs = arguments.Int("cnn-epochs", 1),
                BatchSize = arguments.Int("cnn-batch", 128),
                ValidationFraction = 0,
                Seed = 1,
                NumberOfThreads = 1,
                DataCaching = DataCaching.Memory,
                DataParallel = dataParallel,
            };
            batch = options.BatchSize;
            var trainer = ml.MulticlassClassification.Trainers.ImageClassifier(options);
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Fit(train);
            state = trainer.LastTrainingState!;
            gradientFloats = ((IEnumerable<ITransformer>)model).OfType<ImageClassifierTransformer>().Single().Network.parameters().Sum(p => p.numel());
            if (rank == 0)
                accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        }
        else
        {
            string folder = FineFoodReviews.Folder(arguments.String("reviews"), RepositoryPaths.Root());
            var train = ml.Data.LoadFromEnumerable(FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.Int("text-train", 2000)).ToList());
            var test = ml.Data.LoadFromEnumerable(FineFoodReviews.Load(ml, folder, "test.csv"));
            var options = new TextClassifierOptions
            {
                Epochs = arguments.Int("text-epochs", 1),
                MaxLength = arguments.Int("text-max-length", 128),
                BatchSize = 16,
                ValidationFraction = 0,
                Seed = 1,
                NumberOfThreads = 1,
                DataParallel = dataParallel,
            };
            options.Optimizer.LearningRate = 5e-5;
            batch = options.BatchSize;
            var trainer = ml.BinaryClassification.Trainers.TextClassifier(options);
            var model = trainer.Fit(train);
            state = trainer.LastTrainingState!;
            gradientFloats = model.Network.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
            if (rank == 0)
                accuracy = ml.BinaryClassification.Evaluate(model.Transform(test)).Accuracy;
        }
        using (var process = Process.GetCurrentProcess())
            Console.WriteLine($"CPU {rank} {process.TotalProcessorTime.TotalSeconds.ToString("R", CultureInfo.InvariantCulture)}");
        if (rank == 0)
        {
            var last = state.History[^1];
            var values = new double[] { batch * size, last.SamplesPerSecond, last.Seconds, state.Step, state.CommunicationSeconds, gradientFloats * 4.0 / 1e6, accuracy };
            Console.WriteLine("RESULT " + string.Join(' ', values.Select(x => x.ToString("R", CultureInfo.InvariantCulture))));
            foreach (var e in state.History)
                Console.WriteLine($"epoch {e.Epoch}: loss {e.TrainingLoss:F4}, {e.SamplesPerSecond:F1} samples/s, {e.Seconds:F0} s");
        }
        return 0;
    }
}
