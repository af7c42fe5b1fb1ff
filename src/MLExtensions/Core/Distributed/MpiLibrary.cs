using System.Runtime.InteropServices;

namespace MLExtensions.Core.Distributed;

/// <summary>
/// The few Open MPI functions data-parallel training needs, called directly in <c>libmpi.so.40</c>.
/// </summary>
/// <remarks>
/// <para>The MPI.NET package is built for Microsoft MPI (integer handles, <c>msmpi.dll</c>) and crashes when pointed at
/// Open MPI, so the library binds the C API itself. Open MPI's predefined handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>,
/// <c>MPI_SUM</c>, …) are not integers but the addresses of exported global objects (<c>ompi_mpi_comm_world</c>,
/// <c>ompi_mpi_float</c>, <c>ompi_mpi_op_sum</c>), read here with <see cref="NativeLibrary.GetExport"/>.</para>
/// <para>libmpi is opened with <c>RTLD_GLOBAL</c>: Open MPI loads its components (transports, collectives) as plug-ins
/// that may resolve symbols of libmpi from the global namespace. Debian's Open MPI 4.1.4 links its components against
/// libmpi and also works opened locally (as .NET's own loader does; tried), but builds made without that linking fail
/// there with undefined symbols, so the library does not rely on it.</para>
/// </remarks>
internal sealed unsafe class MpiLibrary
{
    /// <summary>What to install when the library is missing.</summary>
    public const string InstallHint = "Install Open MPI: 'apt-get install openmpi-bin' (Debian/Ubuntu) or 'dnf install openmpi' (Fedora/RHEL, then load the module).";

    private static readonly string[] Candidates = { "libmpi.so.40", "libmpi.so" };

    private const int RtldNow = 2;
    private const int RtldGlobal = 0x100;

    /// <summary>MPI_IN_PLACE in Open MPI: the address 1.</summary>
    public static readonly IntPtr InPlace = 1;

    /// <summary>MPI_SUCCESS.</summary>
    private const int Success = 0;

    private readonly delegate* unmanaged<int*, IntPtr, int, int*, int> _initThread;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int*, int> _finalized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<IntPtr, int*, int> _commRank;
    private readonly delegate* unmanaged<IntPtr, int*, int> _commSize;
    private readonly delegate* unmanaged<IntPtr, void*, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    private readonly delegate* unmanaged<void*, int, IntPtr, int, IntPtr, int> _bcast;
    private readonly delegate* unmanaged<void*, int, IntPtr, void*, int, IntPtr, IntPtr, int> _allgather;
    private readonly delegate* unmanaged<IntPtr, int, int> _abort;

    private MpiLibrary(IntPtr handle, string path)
    {
        Path = path;
        IntPtr Function(string name) => NativeLibrary.GetExport(handle, name);
        _initThread = (delegate* unmanaged<int*, IntPtr, int, int*, int>)Function("MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Function("MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Function("MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Function("MPI_Finalize");
        _commRank = (delegate* unmanaged<IntPtr, int*, int>)Function("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<IntPtr, int*, int>)Function("MPI_Comm_size");
        _allreduce = (delegate* unmanaged<IntPtr, void*, int, IntPtr, IntPtr, IntPtr, int>)Function("MPI_Allreduce");
        _bcast = (delegate* unmanaged<void*, int, IntPtr, int, IntPtr, int>)Function("MPI_Bcast");
        _allgather = (delegate* unmanaged<void*, int, IntPtr, void*, int, IntPtr, IntPtr, int>)Function("MPI_Allgather");
        _abort = (delegate* unmanaged<IntPtr, int, int>)Function("MPI_Abort");
        CommWorld = Function("ompi_mpi_comm_world");
        Float = Function("ompi_mpi_float");
        Double = Function("ompi_mpi_double");
        Byte = Function("ompi_mpi_byte");
        Sum = Function("ompi_mpi_op_sum");
        Max = Function("ompi_mpi_op_max");
        Min = Function("ompi_mpi_op_min");
    }

    /// <summary>The file that was loaded.</summary>
    public string Path { get; }

    /// <summary>MPI_COMM_WORLD.</summary>
    public IntPtr CommWorld { get; }

    /// <summary>MPI_FLOAT.</summary>
    public IntPtr Float { get; }

    /// <summary>MPI_DOUBLE.</summary>
    public IntPtr Double { get; }

    /// <summary>MPI_BYTE.</summary>
    public IntPtr Byte { get; }

    /// <summary>MPI_SUM.</summary>
    public IntPtr Sum { get; }

    /// <summary>MPI_MAX.</summary>
    public IntPtr Max { get; }

    /// <summary>MPI_MIN.</summary>
    public IntPtr Min { get; }

    /// <summary>Opens Open MPI's library with global symbol visibility.</summary>
    /// <exception cref="InvalidOperationException">Open MPI is not installed; the message says how to install it.</exception>
    public static MpiLibrary Load() => Load(Candidates);

    /// <summary>Opens the first of <paramref name="candidates"/> that loads (a parameter so tests can name a missing one).</summary>
    internal static MpiLibrary Load(IEnumerable<string> candidates)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("Data-parallel training uses Open MPI's libmpi.so.40 and runs on Linux only.");
        var errors = new List<string>();
        foreach (string name in candidates)
        {
            IntPtr handle = dlopen(name, RtldNow | RtldGlobal);
            if (handle != IntPtr.Zero)
            {
                try
                {
                    return new MpiLibrary(handle, name);
                }
                catch (EntryPointNotFoundException e)
                {
                    errors.Add($"{name}: not Open MPI ({e.Message})");
                    continue;
                }
            }
            IntPtr message = dlerror();
            errors.Add(message == IntPtr.Zero ? name : Marshal.PtrToStringUTF8(message)!);
        }
        throw new InvalidOperationException(
            $"Data-parallel training needs Open MPI's libmpi.so.40, which could not be loaded ({string.Join("; ", errors)}). {InstallHint}");
    }

    /// <summary>MPI_Init_thread with MPI_THREAD_SERIALIZED (calls may come from any thread, one at a time); returns the level provided.</summary>
    public int InitThreadSerialized()
    {
        const int serialized = 2;
        int provided;
        Check(_initThread(null, IntPtr.Zero, serialized, &provided), "MPI_Init_thread");
        return provided;
    }

    /// <summary>MPI_Initialized.</summary>
    public bool IsInitialized()
    {
        int flag;
        Check(_initialized(&flag), "MPI_Initialized");
        return flag != 0;
    }

    /// <summary>MPI_Finalized.</summary>
    public bool IsFinalized()
    {
        int flag;
        Check(_finalized(&flag), "MPI_Finalized");
        return flag != 0;
    }

    /// <summary>MPI_Finalize.</summary>
    public void FinalizeMpi() => Check(_finalize(), "MPI_Finalize");

    /// <summary>MPI_Comm_rank on MPI_COMM_WORLD.</summary>
    public int Rank()
    {
        int rank;
        Check(_commRank(CommWorld, &rank), "MPI_Comm_rank");
        return rank;
    }

    /// <summary>MPI_Comm_size on MPI_COMM_WORLD.</summary>
    public int Size()
    {
        int size;
        Check(_commSize(CommWorld, &size), "MPI_Comm_size");
        return size;
    }

    /// <summary>In-place MPI_Allreduce of <paramref name="count"/> elements at <paramref name="data"/>.</summary>
    public void AllreduceInPlace(void* data, int count, IntPtr type, IntPtr op) =>
        Check(_allreduce(InPlace, data, count, type, op, CommWorld), "MPI_Allreduce");

    /// <summary>MPI_Bcast of <paramref name="count"/> elements from <paramref name="root"/>.</summary>
    public void Broadcast(void* data, int count, IntPtr type, int root) =>
        Check(_bcast(data, count, type, root, CommWorld), "MPI_Bcast");

    /// <summary>MPI_Allgather: every rank's <paramref name="count"/> elements, in rank order, on every rank.</summary>
    public void Allgather(void* send, void* receive, int count, IntPtr type) =>
        Check(_allgather(send, count, type, receive, count, type, CommWorld), "MPI_Allgather");

    /// <summary>MPI_Abort on MPI_COMM_WORLD: ends every process of the job.</summary>
    public void Abort(int errorCode) => _abort(CommWorld, errorCode);

    private static void Check(int code, string function)
    {
        // MPI_COMM_WORLD's default error handler aborts the job on errors, so a code is rarely seen here.
        if (code != Success)
            throw new InvalidOperationException($"{function} failed with MPI error code {code}.");
    }

    [DllImport("libdl.so.2", EntryPoint = "dlopen")]
    private static extern IntPtr dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libdl.so.2", EntryPoint = "dlerror")]
    private static extern IntPtr dlerror();
}
