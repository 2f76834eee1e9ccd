// Settings of the labelling web app: where Kestrel listens, how queries are handed out, and the limits it enforces.
namespace RlhfSharp.Web;

/// <summary>How <see cref="LabelingApp"/> serves labellers.</summary>
/// <param name="Host">Address Kestrel binds: an IP address or "localhost". Loopback unless the operator says otherwise.</param>
/// <param name="Port">TCP port; 0 picks a free port (read it back with <see cref="LabelingApp.BoundAddress"/>).</param>
/// <param name="Campaign">Only queries of this campaign are handed out and reported; null means all campaigns.</param>
/// <param name="Overlap">How many distinct labellers answer each query (quality control needs at least 2 for agreement).</param>
/// <param name="GoldRate">Fraction of hand-outs that are gold tasks, mixed in unannounced.</param>
/// <param name="MaxRequestBodyBytes">Largest request body accepted; a larger one is refused with 413 and a message.</param>
/// <param name="FlagAccuracyBelow">The dashboard suggests flagging a labeller whose gold accuracy is under this.</param>
/// <param name="MinGoldForFlag">Gold answers a labeller needs before their accuracy can suggest a flag.</param>
/// <param name="SecureCookies">
/// Mark the session cookie Secure (browsers then send it only over HTTPS). Null, the default, means on unless
/// <paramref name="Host"/> is a loopback address: bound beyond this machine the app should sit behind a TLS proxy;
/// false turns it off for plain-HTTP use on a trusted LAN.
/// </param>
public sealed record LabelingAppOptions(
    string Host = "127.0.0.1",
    int Port = 5080,
    string? Campaign = null,
    int Overlap = 1,
    double GoldRate = 0,
    long MaxRequestBodyBytes = 64 * 1024,
    double FlagAccuracyBelow = 0.7,
    int MinGoldForFlag = 5,
    bool? SecureCookies = null)
{
    /// <summary>How long a sign-in lasts: fixed from sign-in (not sliding), then the labeller pastes the token again.</summary>
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(12);

    /// <summary>Whether the session cookie carries the Secure flag (see <see cref="SecureCookies"/>).</summary>
    public bool CookiesAreSecure => SecureCookies ?? !IsLoopback(Host);

    /// <summary>127.0.0.0/8, ::1 or "localhost".</summary>
    public static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip));

    /// <summary>Throws with the offending field and value unless every setting is usable.</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535)
            throw new ArgumentException($"port must be in 0..65535; got {Port}.");
        if (Overlap < 1)
            throw new ArgumentException($"overlap must be at least 1; got {Overlap}.");
        if (GoldRate is < 0 or > 1 || double.IsNaN(GoldRate))
            throw new ArgumentException($"gold rate must be in [0, 1]; got {GoldRate}.");
        if (MaxRequestBodyBytes < 1024)
            throw new ArgumentException($"max request body must be at least 1024 bytes; got {MaxRequestBodyBytes}.");
        if (FlagAccuracyBelow is < 0 or > 1 || double.IsNaN(FlagAccuracyBelow))
            throw new ArgumentException($"flag accuracy threshold must be in [0, 1]; got {FlagAccuracyBelow}.");
        if (MinGoldForFlag < 1)
            throw new ArgumentException($"minimum gold answers for a flag must be at least 1; got {MinGoldForFlag}.");
    }
}
