using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLExtensions.Benchmarks.Data;
using MLExtensions.Benchmarks.Infrastructure;
using MLExtensions.Onnx;
using MLExtensions.Text;

namespace MLExtensions.Benchmarks;

/// <summary>
/// ONNX Runtime throughput of all-MiniLM-L6-v2 as float32, dynamic int8, static int8 (QDQ) and float16 (all made by
/// <see cref="OnnxQuantizer"/>) on real fine-food reviews, at batch 1 and 32, with a fixed number of intra-op threads;
/// plus file sizes and how close each model's sentence embeddings stay to float32. Models are timed in alternation,
/// round after round, and the median round is reported, because a shared machine changes speed over minutes.
/// </summary>
internal sealed class QuantizeBenchmark : IBenchmark
{
    public string Name => "quantize";

    public string Description => "MiniLM ONNX: float32 vs dynamic int8 vs static int8 vs float16 throughput (batch 1 and 32), sizes, embedding agreement";

    public IReadOnlyList<BenchmarkOption> Options { get; } = new BenchmarkOption[]
    {
        new("data", "folder", "folder with train.csv and test.csv (default ../shared/data/fine-foods)"),
        new("reviews", "N", "test reviews timed per round (default 256)"),
        new("calibration", "N", "training reviews used to calibrate static int8 (default 32)"),
        new("threads", "N", "ONNX Runtime intra-op threads (default 2)"),
        new("rounds", "N", "timing rounds; the median is reported (default 3)"),
        new("max-length", "N", "tokens per review, including [CLS] and [SEP] (default 128)"),
    };

    public int Run(BenchmarkArguments arguments, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        string folder = FineFoodReviews.Folder(arguments.String("data"), RepositoryPaths.Root());
        int maxLength = arguments.Int("max-length", 128, minimum: 8);
        int threads = arguments.Int("threads", 2);
        int rounds = arguments.Int("rounds", 3);
        var tokenizer = new WordPieceTokenizer(MiniLmWeights.LoadVocabulary(), lowerCase: true);
        long[] Encode(string text) => tokenizer.Encode(text, null, maxLength).Ids.Select(i => (long)i).ToArray();
        var test = FineFoodReviews.Load(ml, folder, "test.csv").Take(arguments.Int("reviews", 256)).Select(r => Encode(r.Text)).ToList();
        var calibration = FineFoodReviews.Load(ml, folder, "train.csv").Take(arguments.Int("calibration", 32)).Select(r => Encode(r.Text)).ToList();

        output.WriteLine("Benchmark quantize: all-MiniLM-L6-v2 (ONNX) under ONNX Runtime, CPU execution provider");
        output.WriteLine($"  Data:    {folder}: {test.Count} test reviews timed (mean {test.Average(t => t.Length):F1} tokens, max length {maxLength}), {calibration.Count} training reviews for calibration");
        output.WriteLine($"  Runtime: {threads} intra-op threads; {Environment.ProcessorCount} processors; {rounds} rounds, median shown");
        output.WriteLine();

        byte[] floatModel = MiniLmWeights.LoadModelBytes();
        var samples = calibration.Select(ids => Batch.Of(new[] { ids }).ToSample()).ToList();
        var models = new List<(string Name, byte[] Bytes)> { ("float32", floatModel) };
        foreach (var (name, options) in new[]
        {
            ("dynamic int8", new QuantizationOptions { Mode = QuantizationMode.DynamicInt8 }),
            ("static int8 (QDQ, min-max)", new QuantizationOptions { Mode = QuantizationMode.StaticInt8 }),
            ("float16", new QuantizationOptions { Mode = QuantizationMode.Float16 }),
        })
        {
            var clock = Stopwatch.StartNew();
            var result = OnnxQuantizer.Quantize(floatModel, options, samples);
            output.WriteLine($"  {name}: quantized in {clock.Elapsed.TotalSeconds:F1} s; {result.Report.ToString().TrimEnd().Replace("\n", "\n    ")}");
            models.Add((name, result.Model));
        }
        output.WriteLine();

        var sessions = models.Select(m => new InferenceSession(m.Bytes, new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 })).ToList();
        try
        {
            var singles = test.Select(ids => Batch.Of(new[] { ids })).ToList();
            var batches = test.Chunk(32).Select(Batch.Of).ToList();
            var reference = singles.Select(b => b.Embeddings(sessions[0])[0]).ToList();
            var cosines = sessions.Select(s => singles.Select((b, i) => Cosine(reference[i], b.Embeddings(s)[0])).ToList()).ToList();

            var perBatch1 = sessions.Select(_ => new List<double>()).ToList();
            var perBatch32 = sessions.Select(_ => new List<double>()).ToList();
            var load = new List<double>();
            foreach (var s in sessions)
                singles[0].Embeddings(s); // warm-up
            for (int round = 0; round < rounds; round++)
            {
                var start = CpuLoad.Take();
                for (int m = 0; m < sessions.Count; m++)
                {
                    perBatch1[m].Add(Throughput(sessions[m], singles));
                    perBatch32[m].Add(Throughput(sessions[m], batches));
                }
                if (CpuLoad.OtherCores(start, CpuLoad.Take()) is double other)
                    load.Add(other);
            }

            var table = new TextTable("Model", "File", "Size", "Batch 1 reviews/s", "Batch 32 reviews/s", "vs float32 (1 / 32)", "Embedding cosine min / mean");
            double base1 = Statistics.Median(perBatch1[0]), base32 = Statistics.Median(perBatch32[0]);
            for (int m = 0; m < sessions.Count; m++)
            {
                double b1 = Statistics.Median(perBatch1[m]), b32 = Statistics.Median(perBatch32[m]);
                table.AddRow(models[m].Name, $"{models[m].Bytes.Length / 1048576.0:F1} MiB", $"{(double)models[m].Bytes.Length / floatModel.Length:P0}",
                    $"{b1:F1}", $"{b32:F1}", $"{b1 / base1:F2}× / {b32 / base32:F2}×", $"{cosines[m].Min():F4} / {cosines[m].Average():F4}");
            }
            output.WriteLine("Results");
            table.Write(output);
            output.WriteLine($"  Other processes used {(load.Count > 0 ? $"{load.Average():F2} cores on average" : "an unknown share of the CPU")} while timing.");
        }
        finally
        {
            foreach (var s in sessions)
                s.Dispose();
        }
        return 0;
    }

    private static double Throughput(InferenceSession session, IReadOnlyList<Batch> batches)
    {
        var clock = Stopwatch.StartNew();
        int reviews = 0;
        foreach (var batch in batches)
        {
            batch.Embeddings(session);
            reviews += batch.Rows;
        }
        return reviews / clock.Elapsed.TotalSeconds;
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>Token ids padded to the longest review of the batch, with the attention mask; mean-pooled embeddings.</summary>
    private sealed class Batch
    {
        private long[] _ids = Array.Empty<long>();
        private long[] _mask = Array.Empty<long>();

        public int Rows { get; private init; }

        public int Length { get; private init; }

        public static Batch Of(long[][] reviews)
        {
            int length = reviews.Max(r => r.Length);
            var batch = new Batch { Rows = reviews.Length, Length = length, _ids = new long[reviews.Length * length], _mask = new long[reviews.Length * length] };
            for (int r = 0; r < reviews.Length; r++)
            {
                reviews[r].CopyTo(batch._ids, r * length);
                Array.Fill(batch._mask, 1L, r * length, reviews[r].Length);
            }
            return batch;
        }

        public CalibrationSample ToSample() => new CalibrationSample()
            .Add("input_ids", _ids, Rows, Length).Add("attention_mask", _mask, Rows, Length).Add("token_type_ids", new long[_ids.Length], Rows, Length);

        public float[][] Embeddings(InferenceSession session)
        {
            long[] shape = { Rows, Length };
            using var ids = OrtValue.CreateTensorValueFromMemory(_ids, shape);
            using var mask = OrtValue.CreateTensorValueFromMemory(_mask, shape);
            using var types = OrtValue.CreateTensorValueFromMemory(new long[_ids.Length], shape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, new[] { "input_ids", "attention_mask", "token_type_ids" }, new[] { ids, mask, types }, new[] { "last_hidden_state" });
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            int width = hidden.Length / (Rows * Length);
            var result = new float[Rows][];
            for (int r = 0; r < Rows; r++)
            {
                result[r] = new float[width];
                long tokens = 0;
                for (int t = 0; t < Length; t++)
                {
                    if (_mask[r * Length + t] == 0)
                        continue;
                    tokens++;
                    for (int d = 0; d < width; d++)
                        result[r][d] += hidden[(r * Length + t) * width + d];
                }
                for (int d = 0; d < width; d++)
                    result[r][d] /= tokens;
            }
            return result;
        }
    }
}
