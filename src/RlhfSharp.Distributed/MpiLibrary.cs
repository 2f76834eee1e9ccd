// A thin P/Invoke binding to the MPI C API of Open MPI (Debian's `libopenmpi-dev`, libmpi.so.40): the nine calls data
// parallelism needs and nothing more. Not MPI.NET: MPI.NET 1.4.0 (the registry's) binds to Microsoft MPI — its
// DllImports name `msmpi.dll` and its handles are MS-MPI's integer constants (MPI_COMM_WORLD = 0x44000000), while Open
// MPI's handles are addresses of exported globals. Tried once with Debian's Open MPI 4.1 on .NET 10: `new
// MPI.Environment(ref args)` fails with "libmsmpi.dll.so: cannot open shared object file", and remapping the library name
// would still pass MS-MPI handle values to Open MPI. So we bind the C API ourselves.
//
// Open MPI's ABI (mpi.h): MPI_Comm, MPI_Datatype and MPI_Op are pointers; MPI_COMM_WORLD is &ompi_mpi_comm_world,
// MPI_FLOAT &ompi_mpi_float, MPI_DOUBLE &ompi_mpi_double, MPI_BYTE &ompi_mpi_byte, MPI_SUM &ompi_mpi_op_sum, and
// MPI_IN_PLACE is (void*)1. The addresses come from NativeLibrary.GetExport, the functions as unmanaged function pointers.
// The library is loaded only when Cluster finds an mpirun launch, so a plain `rlhf` never touches it.
using System.Runtime.InteropServices;

namespace RlhfSharp.Distributed;

internal sealed unsafe class MpiLibrary
{
    private const int Success = 0; // MPI_SUCCESS

    // RTLD_NOW | RTLD_GLOBAL: Open MPI loads its components (btl, pml, coll plug-ins) with dlopen and they resolve
    // libmpi's own symbols globally; NativeLibrary.Load uses RTLD_LOCAL, which breaks them on some builds.
    private const int RtldNow = 0x2, RtldGlobal = 0x100;

    private readonly nint _lib;
    private readonly delegate* unmanaged<int*, nint, int> _init;
    private readonly delegate* unmanaged<int*, int> _initialized;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<nint, int*, int> _commRank;
    private readonly delegate* unmanaged<nint, int*, int> _commSize;
    private readonly delegate* unmanaged<nint, int> _barrier;
    private readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int> _allgatherv;
    private readonly delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, int> _alltoallv;

    /// <summary>MPI_COMM_WORLD, MPI_FLOAT, MPI_BYTE.</summary>
    public nint CommWorld { get; }
    public nint Float { get; }
    public nint Byte { get; }

    /// <summary>MPI_IN_PLACE in Open MPI.</summary>
    public static void* InPlace => (void*)1;

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint DlOpen(string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    private static extern nint DlError();

    public MpiLibrary(string name = "libmpi.so.40")
    {
        _lib = DlOpen(name, RtldNow | RtldGlobal);
        if (_lib == 0)
            throw new DllNotFoundException($"MPI: cannot load {name} ({Marshal.PtrToStringUTF8(DlError())}); install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev).");
        _init = (delegate* unmanaged<int*, nint, int>)Export("MPI_Init");
        _initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _commRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        _barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        _allgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int>)Export("MPI_Allgatherv");
        _alltoallv = (delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, int>)Export("MPI_Alltoallv");
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Byte = Export("ompi_mpi_byte");
    }

    private nint Export(string symbol) =>
        NativeLibrary.TryGetExport(_lib, symbol, out nint address) ? address
        : throw new EntryPointNotFoundException($"MPI: {symbol} is not exported by the loaded libmpi; this binding expects Open MPI (libmpi.so.40).");

    private static void Check(int code, string call)
    {
        if (code != Success) throw new InvalidOperationException($"MPI: {call} failed with error code {code}.");
    }

    public void Init()
    {
        int flag;
        Check(_initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(_init(null, 0), "MPI_Init");
    }

    /// <summary>MPI_Finalize.</summary>
    public void Close() => Check(_finalize(), "MPI_Finalize");

    public void Abort(int code) => _abort(CommWorld, code);

    public int Rank()
    {
        int r;
        Check(_commRank(CommWorld, &r), "MPI_Comm_rank");
        return r;
    }

    public int Size()
    {
        int s;
        Check(_commSize(CommWorld, &s), "MPI_Comm_size");
        return s;
    }

    public void Barrier() => Check(_barrier(CommWorld), "MPI_Barrier");

    /// <summary>MPI_Allgatherv: send (null = MPI_IN_PLACE) of sendCount items; rank r's items land at recv[displs[r]..].</summary>
    public void Allgatherv(void* send, int sendCount, nint type, void* recv, int* recvCounts, int* displs) =>
        Check(_allgatherv(send, sendCount, type, recv, recvCounts, displs, type, CommWorld), "MPI_Allgatherv");

    /// <summary>MPI_Alltoallv: send[sdispls[r]..+sendCounts[r]) goes to rank r; rank r's items land at recv[rdispls[r]..].</summary>
    public void Alltoallv(void* send, int* sendCounts, int* sdispls, nint type, void* recv, int* recvCounts, int* rdispls) =>
        Check(_alltoallv(send, sendCounts, sdispls, type, recv, recvCounts, rdispls, type, CommWorld), "MPI_Alltoallv");
}
