using Microsoft.ML;
using System.Reflection;

namespace MLExtensions.Tests.Support;

/// <summary>
/// Cancels an <see cref="MLContext"/> the way ML.NET AutoML stops a trial: <c>MLContext.CancelExecution</c> is internal to
/// ML.NET (AutoML reaches it as a friend assembly), so tests call it by reflection.
/// </summary>
public static class MLContextCancellation
{
    public static void Cancel(MLContext ml) =>
        (typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingMethodException("MLContext.CancelExecution not found")).Invoke(ml, null);
}
