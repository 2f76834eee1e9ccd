// `rlhf ppo`: RLHF policy optimisation of an SFT model against a reward model (PPO with a KL leash, PPO-ptx, or RLOO).
using System.CommandLine;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class PpoCommand
{
    public static Command Create()
    {
        var d = new PpoConfig();
        var policy = new Option<string>("--policy") { Description = "SFT model folder: the initial policy and the frozen reference.", Required = true };
        var reward = new Option<string>("--reward") { Description = "Reward model folder (from `rlhf reward train`); it also initialises the value model.", Required = true };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts: JSONL with \"prompt\" or one per line (default: story-world prompts)." };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var steps = new Option<int>("--steps") { Description = "Rollout batches.", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { Description = "Episodes per rollout batch.", DefaultValueFactory = _ => d.BatchSize };
        var mini = new Option<int>("--minibatch-size") { Description = "Episodes per gradient step.", DefaultValueFactory = _ => d.MiniBatchSize };
        var epochs = new Option<int>("--ppo-epochs") { Description = "Passes over each batch.", DefaultValueFactory = _ => d.Epochs };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Response length limit.", DefaultValueFactory = _ => d.MaxNewTokens };
        var lr = new Option<float>("--lr") { Description = "AdamW learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var beta = new Option<double>("--beta") { Description = "Initial KL coefficient β.", DefaultValueFactory = _ => d.InitialKlCoef };
        var targetKl = new Option<double?>("--target-kl") { Description = "Target KL (nats per episode) of the adaptive controller.", DefaultValueFactory = _ => d.TargetKl };
        var fixedBeta = new Option<bool>("--fixed-beta") { Description = "Keep β fixed (no adaptive controller)." };
        var eosPenalty = new Option<double?>("--missing-eos-penalty") { Description = "Subtracted from the score of responses that never end." };
        var rewardClip = new Option<double?>("--reward-clip") { Description = "Clip scores to [−c, c]." };
        var whitenRewards = new Option<bool>("--whiten-rewards") { Description = "Whiten per-token rewards over each batch." };
        var rloo = new Option<bool>("--rloo") { Description = "REINFORCE with a leave-one-out baseline instead of PPO (no value model)." };
        var rlooK = new Option<int>("--rloo-k") { Description = "RLOO samples per prompt.", DefaultValueFactory = _ => d.RlooSamples };
        var ptxCorpus = new Option<string?>("--ptx-corpus") { Description = "PPO-ptx: a text file of pre-training documents (one per line)." };
        var ptxCoef = new Option<float>("--ptx-coef") { Description = "PPO-ptx: γ_ptx.", DefaultValueFactory = _ => d.PtxCoef };
        var checkpointEvery = new Option<int>("--checkpoint-interval") { Description = "Checkpoint every this many steps (0: at the end and on Ctrl-C).", DefaultValueFactory = _ => 10 };
        var seed = new Option<ulong>("--seed") { Description = "Seed.", DefaultValueFactory = _ => d.Seed };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/ppo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("ppo", "Optimise a policy against a reward model with PPO under a KL penalty (or RLOO).");
        foreach (var o in new Option[] { policy, reward, prompts, output, steps, batch, mini, epochs, maxNew, lr, beta, targetKl, fixedBeta, eosPenalty, rewardClip, whitenRewards, rloo, rlooK, ptxCorpus, ptxCoef, checkpointEvery, seed, run, resume })
            command.Options.Add(o);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!, sftDir = p.GetValue(policy)!;
            var config = new PpoConfig
            {
                Algorithm = p.GetValue(rloo) ? PolicyAlgorithm.Rloo : PolicyAlgorithm.Ppo,
                Steps = p.GetValue(steps), BatchSize = p.GetValue(batch), MiniBatchSize = p.GetValue(mini), Epochs = p.GetValue(epochs),
                MaxNewTokens = p.GetValue(maxNew), LearningRate = p.GetValue(lr), InitialKlCoef = p.GetValue(beta),
                TargetKl = p.GetValue(fixedBeta) ? null : p.GetValue(targetKl), MissingEosPenalty = p.GetValue(eosPenalty), RewardClip = p.GetValue(rewardClip),
                WhitenRewards = p.GetValue(whitenRewards), RlooSamples = p.GetValue(rlooK), PtxCoef = p.GetValue(ptxCoef),
                CheckpointEvery = p.GetValue(checkpointEvery), Seed = p.GetValue(seed),
            };
            config.Validate();
            var promptList = p.GetValue(prompts) is string f ? PromptData.Read(f) : Stories.Prompts(1, 2000).ToList();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            var ensemble = RewardEnsemble.Load(p.GetValue(reward)!);
            if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
            List<int[]>? ptxRows = null;
            if (p.GetValue(ptxCorpus) is string corpus)
            {
                if (!File.Exists(corpus)) throw new FileNotFoundException($"--ptx-corpus: {corpus} does not exist.", corpus);
                ptxRows = File.ReadLines(corpus).Where(l => l.Trim().Length > 0).Select(l => tokenizer.Encode(l)).Where(r => r.Length >= 2).ToList();
            }
            // A resumed run replays the command line it was started with (RunContract), so the config is the same.
            using var runDir = RunContract.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "ppo", outDir), p.GetValue(resume));
            var result = AlignCommandSupport.WithProgress(config.Algorithm == PolicyAlgorithm.Ppo ? "ppo" : "rloo", config.Steps, (progress, ct) =>
                new PpoTrainer(config).Train(sft, tokenizer, promptList, new RewardModelReward(ensemble), ensemble,
                    new PpoTrainer.Options(PretrainRows: ptxRows, Run: runDir, Progress: progress), ct));
            if (result.Cancelled) return AlignCommandSupport.Stopped("ppo", runDir.Path, result.Steps);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir);
            var last = result.History.Count > 0 ? result.History[^1] : null;
            Console.Out.WriteLine(last is null ? $"ppo: nothing to do; policy written to {outDir}"
                : $"ppo: score {AlignCommandSupport.Format(last["objective/scores"])}, KL {AlignCommandSupport.Format(last["objective/kl"])} (k3 {AlignCommandSupport.Format(last["objective/kl_k3"])}), β {AlignCommandSupport.Format(last["objective/beta"])}; policy written to {outDir} (run {runDir.Path})");
            return 0;
        });
        return command;
    }
}
