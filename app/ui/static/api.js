// api.js — every request the console makes goes through here.
//
// The service may demand a bearer token (its --token-file; app/guard.py).
// The console does not know in advance: on a 401 it asks for the token once
// (a dialog), keeps it in sessionStorage (gone with the tab) and retries.
// A browser cannot set headers on a WebSocket, so attach sends the token as
// a subprotocol instead: "mydocker.token.<base64url>" offered with
// "mydocker", which the service selects (app/guard.py).

const KEY = "mydocker.token";
let asking = null; // the open dialog's promise: concurrent 401s share it

export function token() {
  return sessionStorage.getItem(KEY);
}

export async function api(path, options = {}) {
  for (;;) {
    const sent = token();
    const headers = new Headers(options.headers || {});
    if (sent) headers.set("Authorization", `Bearer ${sent}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    // A token entered meanwhile (for another request's 401) is tried at once.
    if (token() === sent) await askToken(sent !== null);
  }
}

/** The JSON answer of a request, or an Error carrying the service's "detail". */
export async function apiJson(path, options = {}) {
  const response = await api(path, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail !== undefined ? body.detail : response.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

export function postJson(path, body) {
  return apiJson(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The attach WebSocket's URL and the subprotocols that carry the token. */
export function webSocket(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const t = token();
  const protocols = t ? ["mydocker", `mydocker.token.${base64url(t)}`] : [];
  return new WebSocket(`${scheme}://${location.host}${path}`, protocols);
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function askToken(rejected) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = document.getElementById("token-dialog");
      const input = document.getElementById("token-input");
      document.getElementById("token-message").textContent = rejected
        ? "That token was refused. Enter the service's token:"
        : "This service requires a token (its --token-file). Enter it:";
      input.value = "";
      dialog.addEventListener(
        "close",
        () => {
          sessionStorage.setItem(KEY, input.value.trim());
          asking = null;
          resolve();
        },
        { once: true },
      );
      dialog.showModal();
      input.focus();
    });
  }
  return asking;
}
