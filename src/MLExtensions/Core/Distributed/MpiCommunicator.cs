namespace MLExtensions.Core.Distributed;

/// <summary>
/// MPI_COMM_WORLD with typed, size-safe collectives: spans of any length (split into messages below MPI's
/// <c>int</c> count limit) and byte arrays whose length only the root knows.
/// </summary>
internal sealed unsafe class MpiCommunicator
{
    /// <summary>Largest element count sent in one MPI call (MPI counts are C ints).</summary>
    private const int MaxCount = 1 << 30;

    private readonly MpiLibrary _mpi;
    private readonly object _gate = new(); // MPI_THREAD_SERIALIZED: one call at a time
    private bool _finished;

    private MpiCommunicator(MpiLibrary mpi, int rank, int size)
    {
        _mpi = mpi;
        Rank = rank;
        Size = size;
    }

    /// <summary>This process's rank.</summary>
    public int Rank { get; }

    /// <summary>The number of ranks.</summary>
    public int Size { get; }

    /// <summary>Loads Open MPI and initialises it (or joins an initialisation done by other code in the process).</summary>
    public static MpiCommunicator Start()
    {
        var mpi = MpiLibrary.Load();
        if (mpi.IsFinalized())
            throw new InvalidOperationException("MPI was already finalised in this process; it cannot be initialised again.");
        if (!mpi.IsInitialized())
            mpi.InitThreadSerialized();
        return new MpiCommunicator(mpi, mpi.Rank(), mpi.Size());
    }

    /// <summary>Adds <paramref name="values"/> over all ranks, in place.</summary>
    public void SumInPlace(Span<float> values)
    {
        lock (_gate)
        {
            fixed (float* p = values)
            {
                for (int start = 0; start < values.Length; start += MaxCount)
                    _mpi.AllreduceInPlace(p + start, Math.Min(MaxCount, values.Length - start), _mpi.Float, _mpi.Sum);
            }
        }
    }

    /// <summary>Adds <paramref name="values"/> over all ranks, in place.</summary>
    public void SumInPlace(Span<double> values) => Reduce(values, _mpi.Sum);

    /// <summary>The element-wise maximum of <paramref name="values"/> over all ranks, in place.</summary>
    public void MaxInPlace(Span<double> values) => Reduce(values, _mpi.Max);

    private void Reduce(Span<double> values, IntPtr op)
    {
        lock (_gate)
        {
            fixed (double* p = values)
            {
                for (int start = 0; start < values.Length; start += MaxCount)
                    _mpi.AllreduceInPlace(p + start, Math.Min(MaxCount, values.Length - start), _mpi.Double, op);
            }
        }
    }

    /// <summary>Every rank's <paramref name="values"/> (all of the same length), rank after rank.</summary>
    public double[] Gather(ReadOnlySpan<double> values)
    {
        var all = new double[values.Length * Size];
        lock (_gate)
        {
            fixed (double* send = values)
            fixed (double* receive = all)
                _mpi.Allgather(send, receive, values.Length, _mpi.Double);
        }
        return all;
    }

    /// <summary>Overwrites <paramref name="bytes"/> on every rank with rank 0's.</summary>
    public void BroadcastFromRoot(Span<byte> bytes)
    {
        lock (_gate)
        {
            fixed (byte* p = bytes)
            {
                for (int start = 0; start < bytes.Length; start += MaxCount)
                    _mpi.Broadcast(p + start, Math.Min(MaxCount, bytes.Length - start), _mpi.Byte, 0);
            }
        }
    }

    /// <summary>Rank 0's <paramref name="rootBytes"/> on every rank (the other ranks pass null).</summary>
    public byte[] BroadcastFromRoot(byte[]? rootBytes)
    {
        Span<byte> header = stackalloc byte[sizeof(long)];
        if (Rank == 0)
            BitConverter.TryWriteBytes(header, (long)rootBytes!.Length);
        BroadcastFromRoot(header);
        var bytes = Rank == 0 ? rootBytes! : new byte[BitConverter.ToInt64(header)];
        BroadcastFromRoot(bytes.AsSpan());
        return bytes;
    }

    /// <summary>Ends every process of the job.</summary>
    public void Abort(int errorCode) => _mpi.Abort(errorCode);

    /// <summary>MPI_Finalize at process exit (once, and only if nobody else finalised MPI).</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_finished)
                return;
            _finished = true;
            if (!_mpi.IsFinalized())
                _mpi.FinalizeMpi();
        }
    }
}
