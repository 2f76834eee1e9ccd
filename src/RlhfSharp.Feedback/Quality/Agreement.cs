// Agreement statistics over nominal labels: Cohen's κ for two raters (Cohen 1960) and Krippendorff's α
// (nominal metric, any number of raters, missing values allowed; Krippendorff 2011, "Computing Krippendorff's
// Alpha-Reliability"). Pure functions on labels; QualityControl turns judgments into labels.
namespace RlhfSharp.Feedback.Quality;

public static class Agreement
{
    /// <summary>
    /// Cohen's κ = (p_o − p_e)/(1 − p_e) over items both raters labelled: p_o the observed share of equal labels,
    /// p_e = Σ_c p_A(c)·p_B(c) the share expected by chance. NaN when there are no items or chance agreement is 1.
    /// </summary>
    public static double CohensKappa(IReadOnlyList<(string A, string B)> pairs)
    {
        if (pairs.Count == 0) return double.NaN;
        double n = pairs.Count;
        double po = pairs.Count(p => p.A == p.B) / n;
        var a = pairs.GroupBy(p => p.A).ToDictionary(g => g.Key, g => g.Count() / n);
        var b = pairs.GroupBy(p => p.B).ToDictionary(g => g.Key, g => g.Count() / n);
        double pe = a.Sum(kv => kv.Value * b.GetValueOrDefault(kv.Key));
        return pe >= 1 ? double.NaN : (po - pe) / (1 - pe);
    }

    /// <summary>
    /// Krippendorff's α for nominal data: each unit is the list of values it received (missing ones left out).
    /// Coincidences o_ck = Σ_u (number of c–k pairs in u)/(m_u − 1) over units with m_u ≥ 2 values;
    /// α = 1 − (n − 1)·Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k, with n_c = Σ_k o_ck and n = Σ_c n_c. NaN when undefined.
    /// </summary>
    public static double KrippendorffAlphaNominal(IEnumerable<IReadOnlyList<string>> units)
    {
        var o = new Dictionary<(string, string), double>();
        foreach (var values in units)
        {
            int m = values.Count;
            if (m < 2) continue; // a unit with one value has nothing to agree with
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    if (i != j)
                        o[(values[i], values[j])] = o.GetValueOrDefault((values[i], values[j])) + 1.0 / (m - 1);
        }
        var nc = new Dictionary<string, double>();
        foreach (var ((c, _), v) in o) nc[c] = nc.GetValueOrDefault(c) + v;
        double n = nc.Values.Sum();
        double disagreeObserved = o.Where(kv => kv.Key.Item1 != kv.Key.Item2).Sum(kv => kv.Value);
        double disagreeExpected = 0;
        foreach (var (c, vc) in nc)
            foreach (var (k, vk) in nc)
                if (c != k) disagreeExpected += vc * vk;
        if (n <= 1 || disagreeExpected == 0) return double.NaN;
        return 1 - (n - 1) * disagreeObserved / disagreeExpected;
    }
}
