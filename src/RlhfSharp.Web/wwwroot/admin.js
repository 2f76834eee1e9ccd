// Admin dashboard: renders /api/admin/stats, flags, unflags and revokes labellers, adds labellers, shows the audit log.
// Refreshes every 10 s.
"use strict";
const $ = id => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(0) + "%"; }

function chart(perHour) {
  const w = 1000, h = 130, pad = 22, max = Math.max(1, ...perHour);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + pad}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "judgments per hour");
  const bw = w / perHour.length;
  perHour.forEach((n, i) => {
    const bh = (n / max) * h;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", String(i * bw + 4)); r.setAttribute("y", String(h - bh));
    r.setAttribute("width", String(bw - 8)); r.setAttribute("height", String(bh));
    r.setAttribute("fill", "#2f5fd0");
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", String(i * bw + bw / 2)); t.setAttribute("y", String(h + 18));
    t.setAttribute("text-anchor", "middle"); t.setAttribute("font-size", "15");
    t.textContent = String(n);
    svg.append(r, t);
  });
  $("chart").replaceChildren(svg);
}

async function load() {
  let s;
  try {
    s = (await api("GET", "/api/admin/stats")).data;
  } catch (e) {
    $("status").className = "status error";
    $("status").textContent = e.message;
    return;
  }
  $("status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  $("campaign").textContent = s.campaign ? `· ${s.campaign}` : "· all campaigns";
  $("t-judgments").textContent = fmt(s.judgments);
  $("t-hour").textContent = fmt(s.throughput.lastHour);
  $("t-needed").textContent = fmt(s.queue.answersNeeded);
  $("t-open").textContent = fmt(s.queue.openQueries);
  $("t-agree").textContent = pct(s.agreement.percentAgreement);
  $("t-alpha").textContent = fmt(s.agreement.krippendorffAlpha, 2);
  $("t-median").textContent = fmt(s.throughput.medianSecondsPerJudgment, 1);
  chart(s.throughput.perHour);

  $("warnings").replaceChildren(...s.warnings.map(w => el("li", {}, w)));
  $("warnings").classList.toggle("hidden", s.warnings.length === 0);

  const names = new Map(s.labelers.map(l => [l.id, l.name]));
  const act = (label, call) => {
    const b = el("button", {}, label);
    b.addEventListener("click", async () => {
      try { await call(); await load(); }
      catch (e) { $("status").className = "status error"; $("status").textContent = e.message; }
    });
    return b;
  };
  const rows = s.labelers.map(l => {
    const status = l.revoked ? el("span", { className: "flagged" }, "revoked")
      : l.flagged ? el("span", { className: "flagged" }, "flagged") : l.suggestFlag ? el("span", { className: "flagged" }, "low gold accuracy") : "ok";
    const actions = el("td");
    if (!l.revoked) {
      actions.append(act(l.flagged ? "Unflag" : "Flag", () => api("POST", `/api/admin/labelers/${l.id}/flag`, { flagged: !l.flagged })), " ",
        act("Revoke", async () => { if (confirm(`Revoke ${l.name}? Their token and sessions stop working at once.`)) await api("POST", `/api/admin/labelers/${l.id}/revoke`); }));
    }
    const tr = el("tr");
    for (const v of [l.name, l.role, fmt(l.judgments), fmt(l.skips), `${l.goldCorrect}/${l.goldAnswered}`, pct(l.goldAccuracy), pct(l.estimatedAccuracy), fmt(l.medianSeconds, 1)])
      tr.append(el("td", {}, v));
    tr.append(el("td", {}, status), actions);
    return tr;
  });
  $("labelers").tBodies[0].replaceChildren(...rows);
  try {
    const audit = (await api("GET", "/api/admin/audit")).data;
    $("audit").tBodies[0].replaceChildren(...audit.slice(-20).reverse().map(a => {
      const tr = el("tr");
      for (const v of [new Date(a.at).toLocaleString(), a.actor, a.action, a.target, a.detail ?? ""]) tr.append(el("td", {}, v));
      return tr;
    }));
  } catch { /* the stats above already show the error state */ }
  if (s.agreement.pairs.length === 0) {
    const td = el("td", { colSpan: 5, className: "status" }, "No two labellers have answered the same query yet.");
    $("pairs").tBodies[0].replaceChildren(el("tr", {}, td));
    return;
  }
  $("pairs").tBodies[0].replaceChildren(...s.agreement.pairs.map(p => {
    const tr = el("tr");
    for (const v of [names.get(p.labelerA) ?? p.labelerA, names.get(p.labelerB) ?? p.labelerB, fmt(p.items), pct(p.agreement), fmt(p.kappa, 2)])
      tr.append(el("td", {}, String(v)));
    return tr;
  }));
}

$("add-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  try {
    const r = (await api("POST", "/api/admin/labelers", { name: $("add-name").value, role: $("add-role").value })).data;
    $("new-name").textContent = r.labeler.name;
    $("token-value").textContent = r.token;
    $("new-token").classList.remove("hidden");
    $("add-name").value = "";
    await load();
  } catch (e) {
    $("status").className = "status error";
    $("status").textContent = e.message;
  }
});

(async () => {
  if (!(await requireSignIn())) return;
  await load();
  setInterval(load, 10000);
})();
