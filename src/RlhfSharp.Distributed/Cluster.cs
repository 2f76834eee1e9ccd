// Where this process stands in a data-parallel job. `mpirun -np N rlhf ...` (Open MPI) sets OMPI_COMM_WORLD_SIZE in each
// rank's environment; without it the process is the single rank of a job of one and no MPI library is ever loaded, so
// `rlhf` runs exactly as before. MPI is process-wide (one MPI_COMM_WORLD per process), so this is a static.
namespace RlhfSharp.Distributed;

public static class Cluster
{
    /// <summary>The environment variable Open MPI's launcher sets to the number of ranks.</summary>
    public const string WorldSizeVariable = "OMPI_COMM_WORLD_SIZE";

    private static MpiCommunicator? _mpi;

    /// <summary>The job's ranks: SingleProcess until <see cref="Start"/> finds an mpirun launch.</summary>
    public static ICommunicator World { get; private set; } = SingleProcess.Instance;

    /// <summary>True when this process was launched by mpirun (whether or not <see cref="Start"/> ran yet).</summary>
    public static bool Launched => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(WorldSizeVariable));

    /// <summary>Initialises MPI when launched by mpirun; otherwise does nothing. Call once, before any trainer runs.</summary>
    public static ICommunicator Start()
    {
        if (_mpi is not null || !Launched) return World;
        var library = new MpiLibrary();
        library.Init();
        _mpi = new MpiCommunicator(library);
        World = _mpi;
        return World;
    }

    /// <summary>Ends MPI cleanly (MPI_Finalize) after a successful run.</summary>
    public static void Stop()
    {
        _mpi?.Finish();
        _mpi = null;
        World = SingleProcess.Instance;
    }

    /// <summary>
    /// After an error on one rank: MPI_Abort stops every rank of the job, so the others do not wait forever in a collective
    /// for a rank that has left. Returns without doing anything outside mpirun.
    /// </summary>
    public static void Abort(int code)
    {
        _mpi?.Abort(code);
    }
}
