// Shared by the chat page and the dashboard: the API key (kept in this browser only) and fetch with it.
"use strict";

const KEY_STORE = "bitnet-gguf-api-key";

function apiKey() {
  try { return localStorage.getItem(KEY_STORE) || ""; } catch (e) { return ""; }
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const key = apiKey();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

// The key box appears when the server answers 401; saving the key retries.
function showKeyBox(onSaved) {
  const box = document.getElementById("keybox");
  if (!box) return;
  box.classList.add("shown");
  const input = box.querySelector("input");
  box.onsubmit = ev => {
    ev.preventDefault();
    try { localStorage.setItem(KEY_STORE, input.value.trim()); } catch (e) { /* private mode: key lasts this page */ }
    box.classList.remove("shown");
    if (onSaved) onSaved();
  };
}

// Text of an OpenAI-style error body, or the HTTP status.
async function errorText(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return resp.status + ": " + body.error.message;
  } catch (e) { /* not JSON */ }
  return "HTTP " + resp.status;
}
