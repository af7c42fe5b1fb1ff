using Xunit;
using System.Diagnostics;
using System.Reflection;

namespace MLExtensions.Tests.Support;

/// <summary>Runs MLExtensions.LoadCheck: loads a saved model in a new process and dumps its predictions.</summary>
public static class FreshProcess
{
    public static string[] Predict(string modelPath, IEnumerable<float[]> rows, string workDirectory)
    {
        var list = rows.ToList();
        string data = System.IO.Path.Combine(workDirectory, "rows.tsv");
        File.WriteAllLines(data, list.Select(r => string.Join('\t', r.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))));
        string output = System.IO.Path.Combine(workDirectory, "predictions.txt");
        string directory = typeof(FreshProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "LoadCheckDirectory").Value!;
        string dll = System.IO.Path.Combine(directory, "MLExtensions.LoadCheck.dll");
        Assert.True(File.Exists(dll), $"LoadCheck was not built: {dll}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in new[] { dll, modelPath, data, list[0].Length.ToString(), output })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        string stderr = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"LoadCheck failed ({process.ExitCode}): {stderr}");
        return File.ReadAllLines(output);
    }
}
