// Sign-in page: exchange the token for a session cookie, then go to labelling (admins may go to the dashboard).
"use strict";
(async () => {
  try {
    const me = (await api("GET", "/api/me")).data;
    document.getElementById("already-name").textContent = me.name;
    document.getElementById("already").classList.remove("hidden");
  } catch { /* not signed in yet */ }
})();

document.getElementById("signin-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const status = document.getElementById("status");
  status.className = "status";
  status.textContent = "Signing in…";
  try {
    await api("POST", "/api/session", { token: document.getElementById("token").value });
    location.href = "/label";
  } catch (e) {
    status.className = "status error";
    status.textContent = e.message;
  }
});
