// terminal.js — a terminal in the page: xterm.js over the attach WebSocket
// (GET /containers/{ref}/attach or /execs/{id}/attach; app/attach.py):
//
//   out  binary frames: output (the logs first, so the screen is replayed)
//        text frames: JSON {"type": "exit", ...} or {"type": "error", ...}
//   in   binary frames: what is typed (never text: a typed "{...}" would
//        read as a control message); text {"type": "resize", rows, cols}
//
// xterm.js is served from the build folder scripts/setup fills
// (/ui/vendor/xterm, app/ui/__init__.py); without it `load()` gives null
// and the page says the terminal is unavailable.

import { webSocket } from "./api.js";

const XTERM = "./vendor/xterm";
let loading = null;

/** xterm's Terminal class, or null when its files are not there. */
export function load() {
  if (!loading) {
    loading = import(`${XTERM}/lib/xterm.mjs`)
      .then((module) => {
        const css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = `${XTERM}/css/xterm.css`;
        document.head.append(css);
        return module.Terminal;
      })
      .catch(() => null);
  }
  return loading;
}

/** Attach a new terminal in `element` to the WebSocket at `path`. */
export async function open(element, path, onEnd) {
  const Terminal = await load();
  if (!Terminal) return null;
  const font = { family: "ui-monospace, 'DejaVu Sans Mono', monospace", size: 13 };
  const term = new Terminal({
    rows: 24,
    cols: columnsFor(element, font),
    cursorBlink: true,
    fontFamily: font.family,
    fontSize: font.size,
    theme: { background: "#10141a" },
  });
  term.open(element);
  const socket = webSocket(`${path}?logs=true`);
  socket.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  const sendResize = () =>
    socket.readyState === WebSocket.OPEN &&
    socket.send(JSON.stringify({ type: "resize", rows: term.rows, cols: term.cols }));

  socket.addEventListener("open", () => {
    sendResize();
    term.focus();
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data !== "string") {
      term.write(new Uint8Array(event.data));
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "exit") {
      const how = message.signal ? `killed by ${message.signal}` : `exit code ${message.exit_code}`;
      term.write(`\r\n\x1b[2m[exited: ${how}]\x1b[0m\r\n`);
    } else if (message.type === "error") {
      term.write(`\r\n\x1b[31m[${message.message}]\x1b[0m\r\n`);
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code !== 1000) {
      term.write(`\r\n\x1b[31m[detached: ${event.reason || `code ${event.code}`}]\x1b[0m\r\n`);
    }
    if (onEnd) onEnd();
  });
  const typed = term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  const resized = term.onResize(sendResize);

  return {
    term,
    close() {
      typed.dispose();
      resized.dispose();
      socket.close(1000);
      term.dispose();
    },
  };
}

/** As many columns as fit the element's width (xterm's fit addon does the
 * same from its own measurement; one span of text is enough here). */
function columnsFor(element, font) {
  const probe = document.createElement("span");
  probe.style.cssText = `font: ${font.size}px ${font.family}; position: absolute; visibility: hidden`;
  probe.textContent = "0".repeat(50);
  document.body.append(probe);
  const charWidth = probe.getBoundingClientRect().width / 50;
  probe.remove();
  const style = getComputedStyle(element);
  const width = element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  // xterm keeps room for its scrollbar (about 15 px).
  return Math.max(20, Math.min(200, Math.floor((width - 16) / charWidth) || 80));
}
