using MLExtensions.Samples;

// Runs one sample: `dotnet run --project samples/MLExtensions.Samples -- [name] [options]`.
var samples = new Dictionary<string, Func<string[], int>>(StringComparer.OrdinalIgnoreCase)
{
    ["tour"] = TourSample.Run,
    ["tabular"] = TabularSample.Run,
    ["vision"] = VisionSample.Run,
    ["text"] = TextSample.Run,
    ["distillation"] = DistillationSample.Run,
    ["sweep"] = SweepSample.Run,
    ["clip"] = ClipSample.Run,
    ["explain"] = ExplainSample.Run,
};

string name = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "tour";
if (!samples.TryGetValue(name, out var run))
{
    Console.Error.WriteLine($"Unknown sample '{name}'. Available: {string.Join(", ", samples.Keys)}.");
    return 2;
}
return run(args.SkipWhile(a => !a.StartsWith('-')).ToArray());
