// One logged row of a control trainer, with CleanRL's keys (MetricKeys: charts/episodic_return, losses/policy_loss,
// ...). Runs' MetricsWriter and TensorBoardWriter write it to disk; ToJson is the row's compact form (NaN as null).
using System.Globalization;
using System.Text;

namespace RlhfSharp.Control.Rl;

/// <summary>One logged row: the global step and named scalars.</summary>
public sealed record MetricsRow(long GlobalStep, IReadOnlyDictionary<string, double> Values)
{
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"global_step\":{GlobalStep}");
        foreach (var (k, v) in Values)
        {
            sb.Append(",\"").Append(k).Append("\":");
            sb.Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
        }
        return sb.Append('}').ToString();
    }
}
