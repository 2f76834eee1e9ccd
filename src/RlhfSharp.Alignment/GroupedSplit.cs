// Held-out splits that cannot leak: whole groups (every row of one prompt) go to one side. Splitting by row lets the
// six pairs one 4-way ranking exports, or two labels of one prompt, sit on both sides, so held-out accuracy measures
// memorised prompts and responses. Groups are drawn in a seeded random order and held out until the held-out side
// reaches round(N·fraction) rows; when every group is one row this is exactly the old per-row split (same RNG draws,
// same order), so data with distinct prompts splits as before.
using RlhfSharp.Tensors;

namespace RlhfSharp.Alignment;

public static class GroupedSplit
{
    /// <summary>
    /// Splits N items, item i in group <paramref name="groupKeys"/>[i] (compared ordinally), into held-out and training
    /// index lists. Groups are numbered by first appearance and permuted with one <see cref="Rng.Permutation"/> draw;
    /// whole groups are taken into held-out, in that order, while fewer than round(N·<paramref name="heldOutFraction"/>)
    /// items are held. Inside each side, items follow their group's place in the permutation, then their input order.
    /// </summary>
    public static (int[] HeldOut, int[] Train) Split(IReadOnlyList<string> groupKeys, double heldOutFraction, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(groupKeys);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(heldOutFraction >= 0 && heldOutFraction < 1)) throw new ArgumentException($"grouped split: held-out fraction {heldOutFraction} must lie in [0, 1).");
        var groupOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var members = new List<List<int>>();
        for (int i = 0; i < groupKeys.Count; i++)
        {
            if (!groupOf.TryGetValue(groupKeys[i], out int g))
            {
                g = members.Count;
                groupOf.Add(groupKeys[i], g);
                members.Add([]);
            }
            members[g].Add(i);
        }
        var order = rng.Permutation(members.Count);
        int target = (int)Math.Round(groupKeys.Count * heldOutFraction);
        var held = new List<int>(target);
        var train = new List<int>(groupKeys.Count - target);
        foreach (int g in order)
            (held.Count < target ? held : train).AddRange(members[g]);
        return ([.. held], [.. train]);
    }
}
