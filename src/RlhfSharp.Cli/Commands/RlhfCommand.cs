// The `rlhf` command tree: every subcommand, with the house parser on every numeric option (NumericOptions).
// Program runs it; the CLI tests walk it (the numeric-option audit) without starting a process.
using System.CommandLine;

namespace RlhfSharp.Cli.Commands;

internal static class RlhfCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("RlhfSharp: reinforcement learning from human feedback, end to end, in C#.");
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(StoryWorldCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(SampleCommand.Create());
        root.Subcommands.Add(ScoreCommand.Create());
        root.Subcommands.Add(TokenizerCommand.Create());
        root.Subcommands.Add(LabelCommand.Create());
        root.Subcommands.Add(RlCommand.Create());
        root.Subcommands.Add(PrefRlCommand.Create());
        root.Subcommands.Add(PretrainCommand.Create());
        root.Subcommands.Add(SftCommand.Create());
        root.Subcommands.Add(JudgeCommand.Create());
        root.Subcommands.Add(RewardCommand.Create());
        root.Subcommands.Add(PpoCommand.Create());
        root.Subcommands.Add(DpoCommand.Create());
        root.Subcommands.Add(GrpoCommand.Create());
        root.Subcommands.Add(RftCommand.Create());
        root.Subcommands.Add(CaiCommand.Create());
        root.Subcommands.Add(KtoCommand.Create());
        root.Subcommands.Add(OnlineDpoCommand.Create());
        root.Subcommands.Add(ArithmeticCommand.Create());
        root.Subcommands.Add(MtCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(LoraCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(OverOptCommand.Create());
        root.Subcommands.Add(RlaifCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        NumericOptions.Apply(root);
        return root;
    }
}
