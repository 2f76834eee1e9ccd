// Shared by every page: calls the JSON API with the anti-forgery header, and fills the header with who is signed in.
"use strict";
const CSRF_HEADER = "X-Rlhf-Csrf";

async function api(method, path, body) {
  const init = { method, headers: { [CSRF_HEADER]: "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  if (res.status !== 204 && (res.headers.get("Content-Type") || "").includes("json")) data = await res.json();
  if (!res.ok) {
    const err = new Error((data && data.error) || `${method} ${path} failed with ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return { status: res.status, data };
}

// Returns the signed-in labeller, or sends the browser to the sign-in page.
async function requireSignIn() {
  try {
    const me = (await api("GET", "/api/me")).data;
    const who = document.getElementById("who");
    if (who) who.textContent = `${me.name}${me.role === "admin" ? " (admin)" : ""}`;
    document.querySelectorAll(".admin-only").forEach(e => e.classList.toggle("hidden", me.role !== "admin"));
    const out = document.getElementById("signout");
    if (out) out.addEventListener("click", async () => { await api("DELETE", "/api/session"); location.href = "/"; });
    return me;
  } catch (e) {
    if (e.status === 401) { location.href = "/"; return null; }
    throw e;
  }
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

function fmt(x, digits) {
  if (x === null || x === undefined) return "–";
  return typeof x === "number" ? x.toFixed(digits ?? 0) : String(x);
}
