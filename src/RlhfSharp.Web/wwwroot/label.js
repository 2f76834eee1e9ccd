// Labelling page: fetch the next assignment, show it (text pair, K-way ranking or clips), send the judgment.
// Candidate text is set with textContent and clips are shown through <img src="data:image/svg+xml,...">, where an SVG
// can animate but cannot run script or reach the page: untrusted model output never becomes markup here.
"use strict";
let current = null;     // the assignment on screen
let shownAt = 0;        // when it appeared, for time spent
let busy = false;       // one request at a time: a double key press must not send two answers
let ranking = [];       // candidate indices chosen so far, best first (K-way mode)
let doneCount = 0;

const $ = id => document.getElementById(id);

function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + (cls || ""); }

function svgDataUrl(svg) { return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg); }

function candidateBox(c, i, total) {
  const box = el("div", { className: "card cand", id: `cand-${i}` });
  const title = total === 2 ? (i === 0 ? "1 · Left" : "2 · Right") : `Key ${i + 1}`;
  box.append(el("span", { className: "label" }, title));
  if (current.query.kind === "clip") {
    box.append(el("img", { className: "clip", src: svgDataUrl(c.content), alt: `clip ${i + 1}` }));
  } else {
    box.append(el("div", { className: "text" }, c.content));
  }
  return box;
}

function render() {
  const q = current.query;
  const k = q.candidates.length;
  $("prompt-label").textContent = q.kind === "clip" ? "Context" : "Prompt";
  $("prompt").textContent = q.prompt;
  $("pair").replaceChildren();
  $("ranking").replaceChildren();
  ranking = [];
  hideSkip();
  const pairwise = k === 2;
  $("pair").classList.toggle("hidden", !pairwise);
  $("rank").classList.toggle("hidden", pairwise);
  $("pair-controls").classList.toggle("hidden", !pairwise);
  $("rank-controls").classList.toggle("hidden", pairwise);
  $("replay").classList.toggle("hidden", q.kind !== "clip");
  if (pairwise) {
    q.candidates.forEach((c, i) => $("pair").append(candidateBox(c, i, k)));
  } else {
    q.candidates.forEach((c, i) => {
      const li = el("li", { draggable: true });
      li.dataset.index = i;
      li.append(el("span", { className: "rank" }, "·"), candidateBox(c, i, k));
      $("ranking").append(li);
    });
    wireDrag();
  }
  $("task").classList.remove("hidden");
  shownAt = performance.now();
  setStatus(q.kind === "clip" ? "Which clip shows the better behaviour?" : "Which response is better?");
}

// K-way: the list order is the ranking once every candidate has been placed by key or by drag.
function refreshRanks() {
  const items = [...$("ranking").children];
  items.forEach(li => {
    const pos = ranking.indexOf(Number(li.dataset.index));
    li.querySelector(".rank").textContent = pos >= 0 ? String(pos + 1) : "·";
  });
  // Placed candidates move to the top in their chosen order.
  const placed = ranking.map(i => items.find(li => Number(li.dataset.index) === i));
  const rest = items.filter(li => !ranking.includes(Number(li.dataset.index)));
  $("ranking").replaceChildren(...placed, ...rest);
}

function wireDrag() {
  let dragged = null;
  for (const li of $("ranking").children) {
    li.addEventListener("dragstart", () => { dragged = li; li.classList.add("dragging"); });
    li.addEventListener("dragend", () => {
      li.classList.remove("dragging");
      // After a drag the whole visible order is the ranking.
      ranking = [...$("ranking").children].map(x => Number(x.dataset.index));
      refreshRanks();
    });
    li.addEventListener("dragover", ev => {
      ev.preventDefault();
      if (!dragged || dragged === li) return;
      const r = li.getBoundingClientRect();
      li.parentNode.insertBefore(dragged, ev.clientY < r.top + r.height / 2 ? li : li.nextSibling);
    });
  }
}

async function next() {
  current = null;
  $("task").classList.add("hidden");
  setStatus("Fetching the next comparison…");
  try {
    const res = await api("POST", "/api/assignments/next");
    if (res.status === 204) { setStatus("Nothing left to label. Thank you!", "ok"); return; }
    current = res.data;
    render();
  } catch (e) {
    setStatus(e.message, "error");
  }
}

async function submit(answer) {
  if (!current || busy) return;
  busy = true;
  try {
    await api("POST", "/api/judgments", {
      assignmentId: current.assignmentId,
      queryId: current.query.id,
      answer,
      timeSpentMs: Math.round(performance.now() - shownAt),
    });
    doneCount++;
    $("done-count").textContent = String(doneCount);
    await next();
  } catch (e) {
    setStatus(e.message, "error");
    // Answered differently in another tab (409) or no longer ours (403/404): this one is settled, move on.
    if (e.status === 409 || e.status === 403 || e.status === 404) {
      const note = e.message;
      await next();
      if (current) setStatus(`Previous comparison not saved: ${note}`, "error");
    }
  } finally {
    busy = false;
  }
}

function choose(i) {
  if (!current || current.query.candidates.length !== 2) return;
  const box = $(`cand-${i}`);
  if (box) box.classList.add("chosen");
  submit({ kind: "preferred", preferred: i });
}

function placeNext(i) {
  if (!current || i >= current.query.candidates.length || ranking.includes(i)) return;
  ranking.push(i);
  // The last one left goes last without a key press.
  const k = current.query.candidates.length;
  if (ranking.length === k - 1) ranking.push([...Array(k).keys()].find(x => !ranking.includes(x)));
  refreshRanks();
}

function submitRanking() {
  const k = current ? current.query.candidates.length : 0;
  if (ranking.length !== k) { setStatus(`Rank all ${k} candidates first (${ranking.length} placed).`, "error"); return; }
  submit({ kind: "ranking", ranking: [...ranking] });
}

function showSkip() { $("skip-box").classList.remove("hidden"); $("skip-reason").focus(); }
function hideSkip() { $("skip-box").classList.add("hidden"); }
function confirmSkip() { hideSkip(); submit({ kind: "skip", skipReason: $("skip-reason").value }); }

function replay() {
  // Re-assigning the data URL restarts an SVG's animation from its first frame.
  document.querySelectorAll("img.clip").forEach(img => { const src = img.src; img.src = ""; img.src = src; });
}

document.addEventListener("keydown", ev => {
  if (!current || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const skipOpen = !$("skip-box").classList.contains("hidden");
  if (skipOpen) {
    if (ev.key === "Enter") { ev.preventDefault(); confirmSkip(); }
    else if (ev.key === "Escape") { ev.preventDefault(); hideSkip(); }
    return;
  }
  const k = current.query.candidates.length;
  const key = ev.key.toLowerCase();
  if (key === "t") { ev.preventDefault(); submit({ kind: "tie" }); return; }
  if (key === "s") { ev.preventDefault(); showSkip(); return; }
  if (key === "r" && current.query.kind === "clip") { replay(); return; }
  if (/^[1-9]$/.test(key)) {
    ev.preventDefault();
    const i = Number(key) - 1;
    if (k === 2) choose(i); else placeNext(i);
    return;
  }
  if (k > 2 && ev.key === "Backspace") { ev.preventDefault(); ranking.pop(); refreshRanks(); }
  if (k > 2 && ev.key === "Enter") { ev.preventDefault(); submitRanking(); }
});

$("choose-0").addEventListener("click", () => choose(0));
$("choose-1").addEventListener("click", () => choose(1));
$("tie").addEventListener("click", () => submit({ kind: "tie" }));
$("skip").addEventListener("click", showSkip);
$("replay").addEventListener("click", replay);
$("rank-submit").addEventListener("click", submitRanking);
$("rank-undo").addEventListener("click", () => { ranking.pop(); refreshRanks(); });
$("rank-tie").addEventListener("click", () => submit({ kind: "tie" }));
$("rank-skip").addEventListener("click", showSkip);
$("skip-confirm").addEventListener("click", confirmSkip);
$("skip-cancel").addEventListener("click", hideSkip);

(async () => { if (await requireSignIn()) await next(); })();
