// Who answers the demo's labels stage. The oracle (DemoPipeline's default) answers in-process; `rlhf demo --human` plugs in
// people (HumanDemoLabeler) through a labelling front end the caller starts. Alignment does not know the web app: only this
// seam and Feedback's ILabelingFrontEnd.
namespace RlhfSharp.Alignment.Demo;

/// <summary>One comparison of the labels stage: a prompt and two SFT samples, shown in this order.</summary>
public sealed record DemoPair(string Prompt, string First, string Second);

/// <summary>Labels the demo's SFT sample pairs instead of the oracle.</summary>
public interface IDemoLabeler
{
    /// <summary>
    /// Returns preference lines in TRL's pair columns (<c>{"prompt","chosen","rejected"}</c>, with <c>"tie": true</c> for a
    /// tie; a pair nobody could judge has no line) for <paramref name="pairs"/>. Waits as long as it must; cancellation
    /// throws <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <param name="runDir">The demo's run folder: what must survive a stop and <c>--resume</c> lives here, outside the stage folders (a resumed stage starts its own folder over).</param>
    /// <param name="pairs">The pairs to judge; a resumed run passes the same pairs again.</param>
    /// <param name="progress">Judgments in / needed, reported as the "labels" stage.</param>
    Task<IReadOnlyList<string>> LabelAsync(string runDir, IReadOnlyList<DemoPair> pairs, IProgress<AlignmentProgress>? progress, CancellationToken ct);
}
