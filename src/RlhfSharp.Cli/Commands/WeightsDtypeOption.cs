// `--weights-dtype f32|bf16` (alias `--dtype`) for commands that only run a model forward — `rlhf sample`, `serve` and
// `bench sample`: bf16 holds wte and the Conv1D matrices at 2 bytes a weight, computed in float32 (Models/Gpt.Bf16.cs).
// KV-cached decoding then reads half the weight bytes per token; the logits are exactly the float32 logits of the
// weights rounded to bfloat16 (not of the float32 checkpoint).
using System.CommandLine;
using RlhfSharp.Models;

namespace RlhfSharp.Cli.Commands;

internal static class WeightsDtypeOption
{
    public static Option<FrozenDtype> Create() => new("--weights-dtype", "--dtype")
    {
        Description = "How the model's matrices are held while sampling: f32 (as stored) or bf16 (rounded to nearest even, half the bytes read per token, computed in float32).",
        DefaultValueFactory = _ => FrozenDtype.F32,
    };
}
