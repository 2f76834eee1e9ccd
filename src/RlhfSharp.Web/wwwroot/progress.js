// Progress page: the labeller's own numbers from /api/progress.
"use strict";
(async () => {
  if (!(await requireSignIn())) return;
  try {
    const p = (await api("GET", "/api/progress")).data;
    document.getElementById("judged").textContent = fmt(p.judged);
    document.getElementById("skipped").textContent = fmt(p.skipped);
    document.getElementById("last-hour").textContent = fmt(p.lastHour);
    document.getElementById("median").textContent = fmt(p.medianSeconds, 1);
    document.getElementById("needed").textContent = fmt(p.answersNeeded);
  } catch (e) {
    const s = document.getElementById("status");
    s.className = "status error";
    s.textContent = e.message;
  }
})();
