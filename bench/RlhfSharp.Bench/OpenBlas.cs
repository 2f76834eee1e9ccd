// OpenBLAS's cblas_sgemm as a peer for our GEMM in the same process (Debian's libopenblas0-pthread), bound at run time
// with NativeLibrary so that its absence is not an error: `rlhf bench gemm` then reports its column as null.
using System.Runtime.InteropServices;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Bench;

/// <summary>
/// cblas_sgemm and openblas_set_num_threads from libopenblas.so.0. Never unloaded: OpenBLAS's worker threads outlive
/// each call.
/// </summary>
public sealed unsafe class OpenBlas
{
    // CBLAS enum values (cblas.h): CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;
    private readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    private readonly delegate* unmanaged<int, void> _setThreads;

    private OpenBlas(nint sgemm, nint setThreads)
    {
        _sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
        _setThreads = (delegate* unmanaged<int, void>)setThreads;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(byte* name, byte* value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern byte* GetEnv(byte* name);

    /// <summary>The kernel family OpenBLAS picked (e.g. SkylakeX), for the log line.</summary>
    public string CoreName { get; private init; } = "";

    /// <summary>Loads libopenblas.so.0; null with the reason in <paramref name="whyNot"/> where it is missing or incomplete.</summary>
    public static OpenBlas? TryLoad(out string? whyNot)
    {
        whyNot = null;
        // Debian's 0.3.21 does not recognise this CPU model and falls back to its SSE3 "Prescott" kernels,
        // which would make a strawman peer. Unless the user chose a core, ask for its AVX-512 kernels
        // (read by OpenBLAS from the process environment when it loads, hence libc's setenv).
        fixed (byte* name = "OPENBLAS_CORETYPE\0"u8, value = "SkylakeX\0"u8)
        {
            if (OperatingSystem.IsLinux() && System.Runtime.Intrinsics.X86.Avx512F.IsSupported && GetEnv(name) == null)
                SetEnv(name, value, 0);
        }
        if (!NativeLibrary.TryLoad("libopenblas.so.0", out nint library))
        {
            whyNot = "libopenblas.so.0 not found; apt-get install libopenblas0-pthread provides it";
            return null;
        }
        if (!NativeLibrary.TryGetExport(library, "cblas_sgemm", out nint sgemm) ||
            !NativeLibrary.TryGetExport(library, "openblas_set_num_threads", out nint setThreads))
        {
            NativeLibrary.Free(library);
            whyNot = "libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads";
            return null;
        }
        string core = "unknown";
        if (NativeLibrary.TryGetExport(library, "openblas_get_corename", out nint coreName))
            core = Marshal.PtrToStringUTF8((nint)((delegate* unmanaged<byte*>)coreName)()) ?? core;
        return new OpenBlas(sgemm, setThreads) { CoreName = core };
    }

    public void SetThreads(int threads) => _setThreads(threads);

    /// <summary>C = op(A)·op(B), row-major, with the same operand layouts as Gemm.Multiply.</summary>
    public void Sgemm(GemmForm form, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc) =>
        _sgemm(RowMajor, form == GemmForm.TN ? Trans : NoTrans, form == GemmForm.NT ? Trans : NoTrans,
            m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc);
}
