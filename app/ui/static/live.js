// live.js — how the console hears that containers changed; the one switch:
//
//   GET /events?type=container answers 200  -> read its NDJSON stream, each
//                                             line one event (docs/api.md)
//   it answers 404 (no events on this service) -> poll: a tick every 2 s
//
// Either way `onChange(event)` is called: with the event, or with null for
// "look again" (a poll tick, a stream that ended). The caller re-reads
// GET /containers; the mode shows in document.body.dataset.live.

import { api } from "./api.js";

export const POLL_MS = 2000;
const RETRY_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A page left for another keeps its streams open while it sits in the
// back/forward cache, and each holds one of the six HTTP/1.1 connections the
// browser allows per host: a few pages left behind and this one's requests
// queue forever. Leaving aborts the stream; coming back (pageshow) reloads.
const leaving = new AbortController();
window.addEventListener("pagehide", () => leaving.abort());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) location.reload();
});

export async function watch(onChange) {
  for (;;) {
    let response = null;
    try {
      response = await api("/events?type=container", { signal: leaving.signal });
    } catch {
      // the service is unreachable: try again shortly
    }
    if (response && response.status === 404) return poll(onChange);
    if (response && response.ok && response.body) {
      setMode("events");
      try {
        await readLines(response.body, (line) => onChange(JSON.parse(line)));
      } catch {
        // a cut stream or a bad line: catch up below and listen again
      }
    }
    if (leaving.signal.aborted) return;
    setMode("reconnecting");
    onChange(null); // what happened while not listening
    await sleep(RETRY_MS);
  }
}

async function poll(onChange) {
  setMode("polling");
  for (;;) {
    onChange(null);
    await sleep(POLL_MS);
  }
}

async function readLines(body, onLine) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) if (line.trim()) onLine(line);
  }
}

function setMode(mode) {
  document.body.dataset.live = mode;
  const label = { events: "live: /events", polling: "live: polling every 2 s" }[mode];
  document.getElementById("live-mode").textContent = label || "live: reconnecting…";
}
