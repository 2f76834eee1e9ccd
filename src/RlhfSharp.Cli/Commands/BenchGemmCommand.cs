// `rlhf bench gemm`: GFLOP/s of Gemm.Multiply beside OpenBLAS's cblas_sgemm on the same inputs in the same
// process, for the transformer-sized shapes the engine runs most, each form (NN, NT, TN), 1 and 2 threads.
// OpenBLAS (Debian's libopenblas0-pthread) is only a yardstick here; without it its column is null.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Cli.Commands;

internal static unsafe class BenchGemmCommand
{
    /// <summary>(M, K, N) of the measured products: attention/MLP projections, a square, a small batch, a narrow head.</summary>
    private static readonly (int M, int K, int N)[] Shapes =
        [(512, 384, 1536), (512, 1536, 384), (1024, 1024, 1024), (64, 768, 2304), (8192, 768, 64)];

    private static readonly GemmForm[] Forms = [GemmForm.NN, GemmForm.NT, GemmForm.TN];
    private static readonly int[] ThreadCounts = [1, 2];

    /// <summary>One measured configuration; GFLOP/s from the fastest repetition, null where OpenBLAS is absent.</summary>
    private sealed record Result(int M, int K, int N, GemmForm Form, int Threads, double Ours, double? OpenBlas)
    {
        public double? Ratio => OpenBlas is > 0 ? Ours / OpenBlas : null;
    }

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON array (one object per shape, form and thread count) instead of a table." };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Timed runs per side and configuration after one warm-up, alternating ours and OpenBLAS; the fastest of each is reported.",
            DefaultValueFactory = _ => 9,
        };
        var only = new Option<string?>("--shape") { Description = "Measure only this shape, written M,K,N (default: all five)." };
        var cpuTime = new Option<bool>("--cpu-time")
        {
            Description = "Time 1-thread runs by the calling thread's CPU time (Linux) instead of the wall clock: steadier when other processes load the machine. 2-thread runs stay wall-clock.",
        };
        var command = new Command("gemm", "GEMM GFLOP/s, ours against OpenBLAS cblas_sgemm (libopenblas.so.0), per shape, form and thread count.");
        command.Options.Add(json);
        command.Options.Add(repetitions);
        command.Options.Add(only);
        command.Options.Add(cpuTime);
        command.SetAction(parseResult =>
        {
            int reps = parseResult.GetValue(repetitions);
            if (reps < 1) throw new ArgumentException($"--repetitions must be at least 1 (got {reps}).");
            var shapes = parseResult.GetValue(only) is string text ? [ParseShape(text)] : Shapes;
            bool useCpuTime = parseResult.GetValue(cpuTime);
            if (useCpuTime && !OperatingSystem.IsLinux()) throw new ArgumentException("--cpu-time needs Linux (clock_gettime with CLOCK_THREAD_CPUTIME_ID).");
            var results = Run(shapes, reps, useCpuTime);
            Console.Out.Write(parseResult.GetValue(json) ? ToJson(results) : ToTable(results));
            return 0;
        });
        return command;
    }

    private static (int M, int K, int N) ParseShape(string text)
    {
        var parts = text.Split(',');
        if (parts.Length == 3 &&
            int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int m) && m > 0 &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k > 0 &&
            int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0)
        {
            return (m, k, n);
        }
        throw new ArgumentException($"--shape: expected three positive integers M,K,N but got '{text}'.");
    }

    private static List<Result> Run((int M, int K, int N)[] shapes, int reps, bool cpuTime)
    {
        var blas = OpenBlas.TryLoad(out string? whyNot);
        if (blas is null) Console.Error.WriteLine($"rlhf bench gemm: OpenBLAS not available ({whyNot}); openblas_gflops is null.");
        else Console.Error.WriteLine($"rlhf bench gemm: OpenBLAS kernels: {blas.CoreName}.");
        var results = new List<Result>();
        var rng = new Rng(2024);
        foreach (var (m, k, n) in shapes)
        {
            foreach (var form in Forms)
            {
                using var operands = new Operands(form, m, n, k, rng);
                foreach (int threads in ThreadCounts)
                {
                    void Ours() => Gemm.Multiply(form, m, n, k, operands.A, operands.Lda, operands.B, operands.Ldb, operands.C, n, accumulate: false, threads);
                    void Theirs() => blas!.Sgemm(form, m, n, k, operands.A, operands.Lda, operands.B, operands.Ldb, operands.C, n);
                    blas?.SetThreads(threads);
                    // Alternate the two sides so that load from other processes falls on both alike; keep the fastest of each.
                    Ours();
                    if (blas is not null) Theirs();
                    double ours = double.MaxValue, theirs = double.MaxValue;
                    bool threadClock = cpuTime && threads == 1;
                    for (int r = 0; r < reps; r++)
                    {
                        ours = Math.Min(ours, Seconds(Ours, threadClock));
                        if (blas is null) continue;
                        theirs = Math.Min(theirs, Seconds(Theirs, threadClock));
                        // OpenBLAS's idle threads spin for ~2^28 cycles after a call; let them sleep before we time ours.
                        if (threads > 1) Thread.Sleep(150);
                    }
                    double flops = 2.0 * m * n * k;
                    results.Add(new Result(m, k, n, form, threads, flops / ours / 1e9, blas is null ? null : flops / theirs / 1e9));
                }
            }
        }
        return results;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, long* timespec);

    /// <summary>Seconds one call takes: wall clock, or the calling thread's CPU time (time the thread was not running is left out).</summary>
    private static double Seconds(Action run, bool threadClock)
    {
        if (!threadClock)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        const int ThreadCpuClock = 3; // CLOCK_THREAD_CPUTIME_ID (linux/time.h)
        long* t = stackalloc long[4];
        ClockGetTime(ThreadCpuClock, t);
        run();
        ClockGetTime(ThreadCpuClock, t + 2);
        return (t[2] - t[0]) + (t[3] - t[1]) * 1e-9;
    }

    /// <summary>A JSON array with one object per line.</summary>
    private static string ToJson(List<Result> results)
    {
        var lines = results.Select(r =>
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteNumber("m", r.M);
                writer.WriteNumber("k", r.K);
                writer.WriteNumber("n", r.N);
                writer.WriteString("form", r.Form.ToString());
                writer.WriteNumber("threads", r.Threads);
                writer.WriteNumber("ours_gflops", Math.Round(r.Ours, 2));
                WriteNullable(writer, "openblas_gflops", r.OpenBlas, 2);
                WriteNullable(writer, "ratio", r.Ratio, 3);
                writer.WriteEndObject();
            }
            return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        });
        return "[\n" + string.Join(",\n", lines) + "\n]\n";

        static void WriteNullable(Utf8JsonWriter writer, string name, double? value, int digits)
        {
            if (value is double v) writer.WriteNumber(name, Math.Round(v, digits));
            else writer.WriteNull(name);
        }
    }

    private static string ToTable(List<Result> results)
    {
        var text = new System.Text.StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        text.AppendLine("    M     K     N  form  threads   ours GFLOP/s  OpenBLAS GFLOP/s  ratio");
        foreach (var r in results)
        {
            text.AppendLine(string.Format(ci, "{0,5} {1,5} {2,5}  {3,-4}  {4,7}  {5,13:F1}  {6,16}  {7,5}",
                r.M, r.K, r.N, r.Form, r.Threads, r.Ours,
                r.OpenBlas is double o ? o.ToString("F1", ci) : "n/a",
                r.Ratio is double q ? q.ToString("F3", ci) : "n/a"));
        }
        return text.ToString();
    }

    /// <summary>A, B and C for one shape and form in 64-byte-aligned native memory, A and B uniform in [-1, 1).</summary>
    private sealed class Operands : IDisposable
    {
        public readonly float* A, B, C;
        public readonly int Lda, Ldb;

        public Operands(GemmForm form, int m, int n, int k, Rng rng)
        {
            Lda = form == GemmForm.TN ? m : k;
            Ldb = form == GemmForm.NT ? k : n;
            A = Allocate((long)m * k, rng);
            B = Allocate((long)k * n, rng);
            C = Allocate((long)m * n, rng);
        }

        private static float* Allocate(long count, Rng rng)
        {
            var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
            for (long i = 0; i < count; i++) p[i] = (float)rng.Uniform(-1, 1);
            return p;
        }

        public void Dispose()
        {
            NativeMemory.AlignedFree(A);
            NativeMemory.AlignedFree(B);
            NativeMemory.AlignedFree(C);
        }
    }

    /// <summary>
    /// cblas_sgemm and openblas_set_num_threads from libopenblas.so.0, bound at run time so its absence is not an error.
    /// Never unloaded: OpenBLAS's worker threads outlive each call.
    /// </summary>
    private sealed class OpenBlas
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
}
