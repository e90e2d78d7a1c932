// The chat page: keeps the conversation in the page and streams each answer from /v1/chat/completions.
"use strict";

const $ = id => document.getElementById(id);
let history = [];
let controller = null;

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

// Server-sent events arrive in arbitrary pieces: split on blank lines, keep the unfinished rest.
function takeEvents(buffer, onData) {
  let i;
  while ((i = buffer.indexOf("\n\n")) >= 0) {
    const event = buffer.slice(0, i);
    buffer = buffer.slice(i + 2);
    for (const line of event.split("\n")) if (line.startsWith("data:")) onData(line.slice(5).trim());
  }
  return buffer;
}

async function send(text) {
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  const started = performance.now();
  let firstAt = null, tokens = 0, answer = "";
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history);
  controller = new AbortController();
  busy(true);
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST", signal: controller.signal,
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: "bitnet", messages, stream: true,
        max_tokens: parseInt($("max-tokens").value, 10) || 256, temperature: parseFloat($("temperature").value) }),
    });
    if (resp.status === 401) { history.pop(); out.remove(); showKeyBox(); throw new Error(await errorText(resp)); }
    if (!resp.ok) throw new Error(await errorText(resp));
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = takeEvents(buffer + decoder.decode(value, { stream: true }), data => {
        if (data === "[DONE]") return;
        const ev = JSON.parse(data);
        if (ev.error) throw new Error(ev.error.message || "server error");
        const piece = ev.choices && ev.choices[0] && ev.choices[0].delta && ev.choices[0].delta.content;
        if (piece) {
          if (firstAt === null) firstAt = performance.now();
          tokens++;
          answer += piece;
          out.textContent = answer;
          $("log").scrollTop = $("log").scrollHeight;
        }
      });
    }
    history.push({ role: "assistant", content: answer });
    const secs = (performance.now() - (firstAt || started)) / 1000;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = tokens + " tokens · first after " + Math.round((firstAt || performance.now()) - started) + " ms · " +
      (secs > 0 ? (tokens / secs).toFixed(1) : "–") + " tokens/s";
    out.appendChild(meta);
    out.dataset.tokens = String(tokens);
  } catch (e) {
    if (e.name === "AbortError") {
      history.push({ role: "assistant", content: answer });
    } else {
      if (history.length && history[history.length - 1].role === "user") history.pop();
      out.className = "msg error";
      out.textContent = String(e.message || e);
    }
  } finally {
    controller = null;
    busy(false);
  }
}

$("compose").addEventListener("submit", ev => {
  ev.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", ev => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("compose").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => { history = []; $("log").textContent = ""; });

// /?q=text asks at once: a link can carry a question
const asked = new URLSearchParams(location.search).get("q");
if (asked) send(asked);
