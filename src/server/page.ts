/**
 * The chat page `zh-llama serve` answers at `/`: one self-contained HTML document (inline script
 * and style, no build step, nothing fetched from elsewhere) that talks to this server's own
 * /v1/chat/completions with `stream: true` and shows the reply as it arrives. The conversation
 * lives in the page; an API key, if the server needs one, is kept in the browser's localStorage.
 *
 * For tests and curious users the page's state is `window.zhLlamaChat`
 * ({status, reply, chunks: the streamed pieces of the reply, messages, error}).
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zh-llama</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; background: #f6f6f4; color: #222; display: flex; flex-direction: column; height: 100vh; }
  header { padding: 8px 16px; background: #fff; border-bottom: 1px solid #ddd; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0 8px 0 0; }
  header label { font-size: 13px; color: #555; }
  header input { width: 5em; }
  #key { width: 12em; }
  #log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 80%; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; word-break: break-word; }
  .user { align-self: flex-end; background: #dbeafe; }
  .assistant { align-self: flex-start; background: #fff; border: 1px solid #e2e2e2; }
  .error { align-self: center; color: #b91c1c; font-size: 13px; }
  form { display: flex; gap: 8px; padding: 12px 16px; background: #fff; border-top: 1px solid #ddd; }
  textarea { flex: 1; resize: none; height: 3.2em; font: inherit; padding: 6px 8px; }
  button { padding: 0 16px; font: inherit; }
  #status { font-size: 12px; color: #777; margin-left: auto; }
</style>
</head>
<body>
<header>
  <h1>zh-llama</h1>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>max tokens <input id="max-tokens" type="number" min="1" step="1" value="512"></label>
  <label>API key <input id="key" type="password" autocomplete="off" placeholder="(none)"></label>
  <button id="clear" type="button">New chat</button>
  <span id="status">ready</span>
</header>
<main id="log" aria-live="polite"></main>
<form id="form">
  <textarea id="prompt" placeholder="输入消息，Enter 发送，Shift+Enter 换行" autofocus></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), prompt = $("prompt"), send = $("send"), stop = $("stop"), status = $("status"), key = $("key");
  const state = { status: "ready", reply: "", chunks: 0, messages: [], error: "" };
  window.zhLlamaChat = state;
  let controller = null;
  try { key.value = localStorage.getItem("zh-llama-api-key") || ""; } catch {}
  key.addEventListener("change", () => { try { localStorage.setItem("zh-llama-api-key", key.value); } catch {} });

  function setStatus(s) { state.status = s; status.textContent = s; }
  function bubble(cls, text) {
    const div = document.createElement("div");
    div.className = "msg " + cls;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  async function ask(text) {
    state.messages.push({ role: "user", content: text });
    bubble("user", text);
    const out = bubble("assistant", "");
    state.reply = "";
    state.chunks = 0;
    state.error = "";
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    setStatus("generating");
    const headers = { "content-type": "application/json" };
    if (key.value) headers.authorization = "Bearer " + key.value;
    const body = { messages: state.messages, stream: true, temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value) };
    try {
      const res = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
      if (!res.ok) {
        let message = res.status + " " + res.statusText;
        try { message = (await res.json()).error.message || message; } catch {}
        throw new Error(message);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        let at;
        while ((at = buffer.indexOf("\\n\\n")) >= 0) {
          const event = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          for (const line of event.split("\\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data === "[DONE]") continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message);
            const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
            if (delta && delta.content) {
              state.reply += delta.content;
              state.chunks++;
              out.textContent = state.reply;
              log.scrollTop = log.scrollHeight;
            }
          }
        }
      }
      setStatus("done");
    } catch (error) {
      if (error.name === "AbortError") setStatus("stopped");
      else {
        state.error = String(error.message || error);
        bubble("error", state.error);
        setStatus("error");
      }
    } finally {
      if (state.reply) state.messages.push({ role: "assistant", content: state.reply });
      else if (!out.textContent) out.remove();
      controller = null;
      send.disabled = false;
      stop.disabled = true;
    }
  }

  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    prompt.value = "";
    ask(text);
  });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("form").requestSubmit(); }
  });
  stop.addEventListener("click", () => { if (controller) controller.abort(); });
  $("clear").addEventListener("click", () => {
    if (controller) controller.abort();
    state.messages = [];
    state.reply = "";
    log.textContent = "";
    setStatus("ready");
  });
})();
</script>
</body>
</html>
`;
