using MLExtensions.Core.Distributed;

namespace MLExtensions.Core;

/// <summary>
/// The process's place in a data-parallel job: its rank and the number of ranks. Use it in your own code, e.g. to let only
/// the root save the model: <c>if (DataParallel.IsRoot) mlContext.Model.Save(...)</c>.
/// </summary>
/// <remarks>
/// MPI is initialised on first use (or by <see cref="Initialize"/>) and finalised when the process exits. A program started
/// without <c>mpirun</c> is a job of one rank. Reading these properties loads Open MPI; trainers with
/// <see cref="NetworkTrainerOptions.DataParallel"/> null never do.
/// </remarks>
public static class DataParallel
{
    private static readonly object Gate = new();
    private static MpiCommunicator? _communicator;

    /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
    /// <exception cref="InvalidOperationException">Open MPI is not installed; the message says how to install it.</exception>
    public static int Rank => Communicator.Rank;

    /// <summary>The number of ranks in the job.</summary>
    /// <exception cref="InvalidOperationException">Open MPI is not installed; the message says how to install it.</exception>
    public static int Size => Communicator.Size;

    /// <summary>Whether this process is rank 0, the one that writes checkpoints (and should save models and print reports).</summary>
    public static bool IsRoot => Rank == 0;

    /// <summary>Whether MPI has been initialised in this process.</summary>
    public static bool IsInitialized => Volatile.Read(ref _communicator) is not null;

    /// <summary>Initialises MPI once per process; later calls do nothing.</summary>
    /// <exception cref="InvalidOperationException">Open MPI is not installed; the message says how to install it.</exception>
    public static void Initialize() => _ = Communicator;

    /// <summary>The communicator, initialising MPI on first use.</summary>
    internal static MpiCommunicator Communicator
    {
        get
        {
            var existing = Volatile.Read(ref _communicator);
            if (existing is not null)
                return existing;
            lock (Gate)
            {
                if (_communicator is null)
                {
                    var communicator = MpiCommunicator.Start();
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => communicator.Finish();
                    Volatile.Write(ref _communicator, communicator);
                }
                return _communicator;
            }
        }
    }

    /// <summary>
    /// Ends the whole job because of <paramref name="error"/> on this rank: prints the error with the rank to the standard
    /// error stream and calls MPI_Abort, so the other ranks do not wait forever in a collective. Does not return.
    /// </summary>
    internal static void Abort(Exception error)
    {
        var communicator = Volatile.Read(ref _communicator);
        string message = $"[MLExtensions data-parallel rank {communicator?.Rank.ToString() ?? "?"} of {communicator?.Size.ToString() ?? "?"}] " +
            $"aborting the job: {error.GetType().Name}: {error.Message}";
        Console.Error.WriteLine(message);
        Console.Error.WriteLine(error);
        Console.Error.Flush();
        Console.Out.Flush();
        communicator?.Abort(1);
        Environment.Exit(1); // not reached when MPI_Abort ends the process
    }
}
