// The GEMM and tokenizer measurements on small inputs: every configuration is reported with finite, positive figures,
// the absent peer is null rather than a number, and the JSON carries each row.
using System.Text.Json;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Text;

namespace RlhfSharp.Bench.Tests;

public sealed class BenchTests
{
    [Fact]
    public void Given_one_small_shape_and_no_openblas_When_gemm_is_measured_Then_each_form_and_thread_count_has_a_row_and_the_peer_is_null()
    {
        var results = GemmBench.Run([(8, 16, 24)], reps: 1, cpuTime: false, blas: null);

        Assert.Equal([(GemmForm.NN, 1), (GemmForm.NN, 2), (GemmForm.NT, 1), (GemmForm.NT, 2), (GemmForm.TN, 1), (GemmForm.TN, 2)],
            results.Select(r => (r.Form, r.Threads)));
        Assert.All(results, r =>
        {
            Assert.Equal((8, 16, 24), (r.M, r.K, r.N));
            Assert.True(double.IsFinite(r.Ours) && r.Ours > 0, $"{r.Ours} GFLOP/s");
            Assert.Null(r.OpenBlas);
            Assert.Null(r.Ratio);
        });
        var rows = JsonDocument.Parse(GemmBench.ToJson(results)).RootElement;
        Assert.Equal(6, rows.GetArrayLength());
        Assert.Equal("TN", rows[5].GetProperty("form").GetString());
        Assert.Equal(JsonValueKind.Null, rows[5].GetProperty("openblas_gflops").ValueKind);
    }

    [Fact]
    public void Given_a_short_text_When_the_tokenizer_is_measured_Then_both_paths_agree_and_the_json_names_the_corpus()
    {
        var tokenizer = Gpt2Tokenizer.Load(Repository.Data("gpt2"));
        string text = string.Concat(Enumerable.Repeat("It is a truth universally acknowledged, that a single man in possession of a good fortune. ", 20));

        var result = TokenizerBench.Measure(tokenizer, text, passes: 1);

        var ids = new List<int>();
        tokenizer.EncodeOrdinary(text, ids);
        Assert.Equal(ids.Count, result.Tokens);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), result.Bytes);
        Assert.True(result.MbPerSecond > 0 && result.RegexMbPerSecond > 0 && result.CpuMbPerSecond > 0);
        var json = JsonDocument.Parse(result.ToJson("sample")).RootElement;
        Assert.Equal("sample", json.GetProperty("corpus").GetString());
        Assert.Equal(result.Tokens, json.GetProperty("tokens").GetInt32());
    }
}
