// The judge's training data and context (Alignment/Judging, Models/ContextExtension.cs), without learning: the question
// is exactly AiJudge's, both orders of every pair are there with the right answer, ties give nothing, and a longer
// context leaves what the model computes on short inputs unchanged.
using RlhfSharp.Alignment.Judging;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class JudgeTrainerTests
{
    [Fact]
    public void Given_labelled_comparisons_When_made_into_pairs_Then_ties_give_none_and_a_ranking_gives_every_ordered_pair()
    {
        var pairs = JudgeTrainer.Pairs([
            new PreferenceExample("p", ["good", "bad"], PreferenceKind.Pair),
            new PreferenceExample("q", ["same", "same too"], PreferenceKind.Pair, Tie: true),
            new PreferenceExample("r", ["a", "b", "c"], PreferenceKind.Ranking, Ranking: [2, 0, 1]),
        ]);
        Assert.Equal([new("p", "good", "bad"), new("r", "c", "a"), new("r", "c", "b"), new("r", "a", "b")], pairs);
    }

    [Fact]
    public void Given_a_pair_When_made_into_examples_Then_both_orders_ask_AiJudges_question_and_answer_the_chosen_position()
    {
        var template = ChatTemplate.Default;
        var examples = JudgeTrainer.Examples([new JudgePair("Once upon a time.", " A fine end.", " spam spam")], template);
        Assert.Equal(2, examples.Count);
        // The rendered prompt is what `rlhf serve` renders for AiJudge's messages (system + user, generation prompt).
        string forward = template.Render([new("system", AiJudge.DefaultInstructions), new("user", AiJudge.UserMessage("Once upon a time.", [" A fine end.", " spam spam"]))], addGenerationPrompt: true);
        string backward = template.Render([new("system", AiJudge.DefaultInstructions), new("user", AiJudge.UserMessage("Once upon a time.", [" spam spam", " A fine end."]))], addGenerationPrompt: true);
        Assert.Equal(forward, examples[0].Prompt);
        Assert.Equal(backward, examples[1].Prompt);
        Assert.EndsWith("Assistant:", examples[0].Prompt, StringComparison.Ordinal);
        // The reply is " 1" / " 2" closed by the template's end-of-text (so a served judge answers " 1" and stops).
        Assert.Equal(" 1" + Gpt2Tokenizer.EndOfText, examples[0].Completion);
        Assert.Equal(" 2" + Gpt2Tokenizer.EndOfText, examples[1].Completion);
        Assert.All(examples, e => Assert.True(e.Templated));
        // And AiJudge reads those replies as the chosen response's position.
        Assert.Equal(0, AiJudge.ParseVerdict(" 1", 2));
        Assert.Equal(1, AiJudge.ParseVerdict(" 2", 2));
    }

    [Fact]
    public void Given_a_model_When_its_context_is_extended_Then_old_positions_compute_the_same_and_new_rows_copy_the_old_in_order()
    {
        var model = Gpt.Create(new GptConfig { VocabSize = 40, BlockSize = 8, NEmbd = 16, NLayer = 1, NHead = 2 }, new Rng(5));
        var longer = ContextExtension.Extend(model, 20);
        Assert.Equal(20, longer.Config.BlockSize);
        var wpe = model.Param("wpe.weight").ToArray();
        var extended = longer.Param("wpe.weight").ToArray();
        for (int t = 0; t < 20; t++)
            Assert.Equal(wpe.AsSpan(t % 8 * 16, 16).ToArray(), extended.AsSpan(t * 16, 16).ToArray());
        // Same logits, bit for bit, on an input that fitted the old context.
        var input = new GptInput(2, 8, [.. Enumerable.Range(0, 16).Select(i => (i * 7) % 40)]);
        Assert.Equal(model.Forward(input).Logits!, longer.Forward(input).Logits!);
        // A longer input runs (the old model refuses it), and shrinking is refused.
        Assert.NotNull(longer.Forward(new GptInput(1, 20, [.. Enumerable.Range(0, 20)])).Logits);
        Assert.Throws<ArgumentException>(() => model.Forward(new GptInput(1, 20, [.. Enumerable.Range(0, 20)])));
        Assert.Throws<ArgumentException>(() => ContextExtension.Extend(longer, 8));
    }
}
