using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.ML;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Core;
using MLExtensions.Core.Native;
using MLExtensions.Text;
using MLExtensions.WebApi;

namespace MLExtensions.Benchmarks;

/// <summary>
/// The serving sample (samples/MLExtensions.WebApi) under load on loopback, next to in-process prediction measured in the
/// same run: a fine-tuned MiniLM review classifier, 16 concurrent clients × 500 requests (the test reviews, cycled).
/// Checks: no failed request, every answer identical to serial in-process scoring of the same review. Prints requests/s,
/// p50/p99 latency, and in-process throughput of the same engine pool at the same concurrency (target: HTTP ≥ 70 % of it;
/// the two alternate in five rounds so that other load on the machine hits both alike).
/// Then the same load while the model file is replaced twice (A → B → A): no failed request, and every answer equals the
/// serial answer of the model version it reports.
/// </summary>
internal sealed class ServeBenchmark : IBenchmark
{
    public string Name => "serve";

    public string Description => "The web API sample under load on loopback vs in-process PredictionEngine throughput; hot reload under load";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("model", "path", "fine-tuned MiniLM review classifier (default benchmark-output/serve-minilm.zip; trained and saved when missing)"),
        new("data", "folder", "fine-food folder (default ../shared/data/fine-foods, else samples/data/fine-foods)"),
        new("clients", "N", "concurrent clients (default 16)"),
        new("requests", "N", "requests per client (default 500)"),
        new("train-limit", "N", "training reviews when the model is trained here (default 500)"),
        new("torch-threads", "N", "libtorch intra-op threads while scoring, in-process and served alike (default 1, as the service)"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        string root = RepositoryPaths.Root();
        int clients = arguments.Int("clients", 16);
        int perClient = arguments.Int("requests", 500);
        string folder = FineFoodReviews.Folder(arguments.String("data"), root);
        var ml = new MLContext(seed: 1);
        var testTexts = FineFoodReviews.Load(ml, folder, "test.csv").Select(r => r.Text).ToList();
        string outputFolder = Path.Combine(root, "benchmark-output");
        Directory.CreateDirectory(outputFolder);

        string modelA = Path.GetFullPath(arguments.String("model") ?? Path.Combine(outputFolder, "serve-minilm.zip"));
        TorchNativeLoader.EnsureLoaded();
        if (!File.Exists(modelA))
            TrainMiniLm(ml, folder, arguments.Int("train-limit", 500), modelA, output);
        int torchThreads = arguments.Int("torch-threads", 1, minimum: 0);
        if (torchThreads > 0)
            TorchSharp.torch.set_num_threads(torchThreads);
        // Model B only has to answer differently, so the switch is visible: a small encoder trained from scratch in seconds.
        string modelB = Path.Combine(outputFolder, "serve-scratch.zip");
        TrainScratch(ml, folder, modelB);
        string served = Path.Combine(outputFolder, "serve-current.zip");
        File.Copy(modelA, served, overwrite: true);

        var referenceA = ScoreSerially(modelA, testTexts);
        var referenceB = ScoreSerially(modelB, testTexts);
        int differing = referenceA.Zip(referenceB).Count(p => p.First.PredictedLabel != p.Second.PredictedLabel);
        output.WriteLine($"Reviews: {testTexts.Count} test reviews from {folder}, cycled; {clients} clients × {perClient} requests; torch threads {torchThreads}; text limit {MaxTextLength} characters.");
        output.WriteLine($"Model A: {modelA}; model B: {modelB}; they disagree on {differing} of {testTexts.Count} reviews.\n");

        using var app = ServingApplication.Build(new[] { $"--Serving:ModelPath={served}", $"--Serving:TorchThreads={torchThreads}",
            // The test set has one review of 8,055 characters; the service's default limit (5,000) would reject it by design.
            $"--Serving:MaxTextLength={MaxTextLength}", "--urls=http://127.0.0.1:0" }, builder =>
            builder.Logging.SetMinimumLevel(LogLevel.Warning));
        app.StartAsync().GetAwaiter().GetResult();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var pool = app.Services.GetRequiredService<ReloadingPredictionEnginePool<ReviewInput, ReviewPrediction>>();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = new Uri(address),
        };

        // Warm-up: JIT, the engine pool, connections.
        RunLoad(clients, 10, testTexts, (text, _) => Task.FromResult(ToResponse(pool.Predict(new ReviewInput { Text = text }), 1)));
        RunLoad(clients, 10, testTexts, (text, _) => PostAsync(http, text));

        // In-process and HTTP alternate in rounds, so that a change of machine speed or of other load hits both alike.
        const int rounds = 5;
        var inProcessRounds = new List<LoadResult>();
        var httpRounds = new List<LoadResult>();
        double? inProcessLoad = 0, httpLoad = 0;
        for (int round = 0; round < rounds; round++)
        {
            int requests = perClient / rounds + (round < perClient % rounds ? 1 : 0);
            var cpu = CpuLoad.Take();
            inProcessRounds.Add(RunLoad(clients, requests, testTexts, (text, _) => Task.FromResult(ToResponse(pool.Predict(new ReviewInput { Text = text }, out int v), v))));
            var middle = CpuLoad.Take();
            httpRounds.Add(RunLoad(clients, requests, testTexts, (text, _) => PostAsync(http, text)));
            inProcessLoad += CpuLoad.OtherCores(cpu, middle) / rounds;
            httpLoad += CpuLoad.OtherCores(middle, CpuLoad.Take()) / rounds;
        }
        var inProcess = LoadResult.Combine(inProcessRounds);
        var served1 = LoadResult.Combine(httpRounds);

        var table = new TextTable("path", "requests", "failed", "not identical", "requests/s", "p50 ms", "p99 ms", "other load");
        Add(table, $"in-process pool.Predict ({clients} threads)", inProcess, referenceA, referenceB, inProcessLoad);
        Add(table, $"HTTP POST /predict ({clients} clients)", served1, referenceA, referenceB, httpLoad);
        table.Write(output);
        double ratio = served1.Throughput / inProcess.Throughput;
        output.WriteLine($"\nHTTP serving = {ratio:P1} of in-process throughput (target ≥ 70 %): {(ratio >= 0.7 ? "met" : "NOT met")}.\n");

        // Hot reload under load: A → B after a third of the requests, B → A after two thirds (written aside, then moved over).
        int total = clients * perClient;
        int completed = 0;
        var reloads = new List<string>();
        var reloadLoad = RunLoad(clients, perClient, testTexts, async (text, _) =>
        {
            var response = await PostAsync(http, text);
            int done = Interlocked.Increment(ref completed);
            if (done == total / 3 || done == 2 * total / 3)
            {
                string source = done == total / 3 ? modelB : modelA;
                File.Copy(source, served + ".new", overwrite: true);
                File.Move(served + ".new", served, overwrite: true);
                lock (reloads)
                    reloads.Add($"after {done} requests: replaced with {Path.GetFileName(source)}");
            }
            return response;
        });
        var versions = reloadLoad.Answers.GroupBy(a => a.Response?.ModelVersion ?? -1).OrderBy(g => g.Key)
            .Select(g => $"v{g.Key}: {g.Count()}").ToList();
        var reloadTable = new TextTable("path", "requests", "failed", "not identical", "requests/s", "p50 ms", "p99 ms", "other load");
        Add(reloadTable, "HTTP with two reloads", reloadLoad, referenceA, referenceB, null);
        reloadTable.Write(output);
        foreach (var line in reloads)
            output.WriteLine("  " + line);
        output.WriteLine($"  answers by model version (v1 = A, v2 = B, v3 = A): {string.Join(", ", versions)}; serving version at the end of the load: {pool.ModelVersion}.");

        // The last replacement may still be loading when the load ends: wait for it, then check answers are model A's again.
        var waited = Stopwatch.StartNew();
        while (pool.ModelVersion < 3 && waited.Elapsed < TimeSpan.FromMinutes(2))
            Thread.Sleep(100);
        var after = RunLoad(1, 50, testTexts, (text, _) => PostAsync(http, text));
        int afterWrong = after.Answers.Count(x => x.Response is not { } r || r.ModelVersion != 3 ||
            referenceA[x.Index].PredictedLabel != r.Label || referenceA[x.Index].Probability != r.Probability);
        output.WriteLine($"  after the load: serving version {pool.ModelVersion} ({waited.Elapsed.TotalSeconds:F1} s later); " +
                         $"{after.Answers.Count - afterWrong} of {after.Answers.Count} answers are model A's (version 3), identical to serial scoring.");
        app.StopAsync().GetAwaiter().GetResult();
        return 0;
    }

    private sealed record Answer(int Index, PredictResponse? Response, double Milliseconds, string? Error);

    private sealed record LoadResult(IReadOnlyList<Answer> Answers, double Seconds)
    {
        public double Throughput => Answers.Count / Seconds;

        public static LoadResult Combine(IReadOnlyList<LoadResult> rounds) =>
            new(rounds.SelectMany(r => r.Answers).ToList(), rounds.Sum(r => r.Seconds));
    }

    private static LoadResult RunLoad(int clients, int perClient, IReadOnlyList<string> texts, Func<string, int, Task<PredictResponse>> call)
    {
        var answers = new ConcurrentBag<Answer>();
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
        {
            for (int i = 0; i < perClient; i++)
            {
                int index = (client * perClient + i) % texts.Count;
                long start = Stopwatch.GetTimestamp();
                try
                {
                    var response = await call(texts[index], index);
                    answers.Add(new Answer(index, response, Stopwatch.GetElapsedTime(start).TotalMilliseconds, null));
                }
                catch (Exception e)
                {
                    answers.Add(new Answer(index, null, Stopwatch.GetElapsedTime(start).TotalMilliseconds, e.Message));
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        return new LoadResult(answers.ToList(), clock.Elapsed.TotalSeconds);
    }

    private static void Add(TextTable table, string name, LoadResult result, IReadOnlyList<ReviewPrediction> a, IReadOnlyList<ReviewPrediction> b, double? load)
    {
        int failed = result.Answers.Count(x => x.Response is null);
        // Versions 1 and 3 are model A, version 2 is model B (the reload phase); everything else serves A.
        int different = result.Answers.Count(x => x.Response is { } r &&
            (r.ModelVersion == 2 ? b : a)[x.Index] is var expected && (expected.PredictedLabel != r.Label || expected.Probability != r.Probability));
        var latencies = result.Answers.Select(x => x.Milliseconds).OrderBy(x => x).ToList();
        table.AddRow(name, result.Answers.Count.ToString(), failed.ToString(), different.ToString(), $"{result.Throughput:F1}",
            $"{Percentile(latencies, 0.50):F1}", $"{Percentile(latencies, 0.99):F1}", load is { } l ? $"{l:P0}" : "-");
        foreach (var error in result.Answers.Where(x => x.Error is not null).Select(x => x.Error).Distinct().Take(3))
            table.AddRow("  error: " + error, "", "", "", "", "", "", "");
    }

    private static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static async Task<PredictResponse> PostAsync(HttpClient http, string text)
    {
        using var response = await http.PostAsJsonAsync("/predict", new { text });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<PredictResponse>())!;
    }

    private static PredictResponse ToResponse(ReviewPrediction p, int version) => new(p.PredictedLabel, p.Probability, p.Score, version);

    private static IReadOnlyList<ReviewPrediction> ScoreSerially(string path, IReadOnlyList<string> texts)
    {
        var ml = new MLContext();
        var model = ml.Model.Load(path, out _);
        var engine = ml.Model.CreatePredictionEngine<ReviewInput, ReviewPrediction>(model);
        return texts.Select(t => engine.Predict(new ReviewInput { Text = t })).ToList();
    }

    private static void TrainMiniLm(MLContext ml, string folder, int limit, string path, TextWriter output)
    {
        output.WriteLine($"Training the MiniLM review classifier (1 epoch, {limit} reviews) → {path} ...");
        var clock = Stopwatch.StartNew();
        var train = ml.Data.LoadFromEnumerable(FineFoodReviews.Load(ml, folder, "train.csv").Take(limit).ToList());
        var model = ml.BinaryClassification.Trainers.TextClassifier(new TextClassifierOptions { Epochs = 1, MaxLength = 128 }).Fit(train);
        ml.Model.Save(model, train.Schema, path);
        output.WriteLine($"  trained in {clock.Elapsed.TotalMinutes:F1} min.\n");
    }

    private static void TrainScratch(MLContext ml, string folder, string path)
    {
        var train = ml.Data.LoadFromEnumerable(FineFoodReviews.Load(ml, folder, "train.csv").Take(300).ToList());
        var options = new TextClassifierOptions
        {
            Encoder = TextEncoderSource.Scratch,
            ScratchConfig = BertConfig.Small(MiniLmVocabularySize, layers: 1, hidden: 32, heads: 2, maxPositions: 128),
            Epochs = 2,
            MaxLength = 64,
        };
        var model = ml.BinaryClassification.Trainers.TextClassifier(options).Fit(train);
        ml.Model.Save(model, train.Schema, path);
    }

    private const int MiniLmVocabularySize = 30522;

    private const int MaxTextLength = 20_000;
}
