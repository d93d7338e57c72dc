// The quasipaa web console: a single-page app in plain ES modules, no build.
//
// Routes (in the URL fragment): #/streams, #/streams/{app}/{stream},
// #/publish, #/nodes, #/recordings. Every view polls the API while shown.
// WebRTC playing and publishing reuse the built-in pages of package web
// (/{app}/{stream}/ and /{app}/{stream}/publish) in a frame; HLS plays with
// the console's own MSE player (hls.js).
//
// Play and publish tokens (apps with auth: token): the stream view and the
// publish view take a pasted token (kept in sessionStorage, or given as
// ?token= in the route: #/streams/live/cam?token=…), sent as ?token= on
// the FLV and HLS URLs and on the built-in pages, which pass their query
// on to the WHEP/WHIP endpoint. The console cannot mint tokens: the key
// that signs them stays on the server.
//
// Test hook, window.qconsole:
//   view        the route shown ("streams", "stream", "publish", "nodes", "recordings")
//   protocol    the stream view's player: "whep", "hls", "flv" or ""
//   playback()  {protocol, state, error, frames, time} of the current player

import { api, APIError, key, setKey, onUnauthorized } from "./api.js";
import { HLSPlayer } from "./hls.js";
import { FLVPlayer } from "./flv.js";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

// ---- small DOM helpers (text only: API data never becomes HTML) ----

/** h builds an element: h("td", {class: "x", onclick: fn}, "text", child…). */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function table(headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, rows));
}

// ---- formatting ----

function bitrate(bps) {
  if (!bps) return "0";
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mbit/s";
  return Math.round(bps / 1e3) + " kbit/s";
}

function duration(s) {
  s = Math.max(0, Math.floor(s || 0));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (d ? d + "d " : "") + (d || hh ? hh + ":" + two(mm) : mm) + ":" + two(ss);
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function since(iso) {
  const t = Date.parse(iso);
  return isNaN(t) ? "" : duration((Date.now() - t) / 1000);
}

function trackText(t) {
  if (t.kind === "video") return [t.codec, t.width ? `${t.width}×${t.height}` : "", t.profile, t.level].filter(Boolean).join(" ");
  return [t.codec, t.sample_rate ? `${t.sample_rate / 1000} kHz` : "", t.channels ? `${t.channels} ch` : ""].filter(Boolean).join(" ");
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch (_) {
    return s;
  }
}

/** enc percent-encodes each segment of a stream path. */
const enc = (path) => path.split("/").map(encodeURIComponent).join("/");

// ---- play and publish tokens ----

const TOKENS = { play: "quasipaa.playToken", publish: "quasipaa.publishToken" };

/** storedToken returns the token kept for kind ("play" or "publish"), or "". */
function storedToken(kind) {
  try {
    return sessionStorage.getItem(TOKENS[kind]) || "";
  } catch (_) {
    return "";
  }
}

/** storeToken keeps (or with "" forgets) the token for kind in the tab. */
function storeToken(kind, t) {
  try {
    if (t) sessionStorage.setItem(TOKENS[kind], t);
    else sessionStorage.removeItem(TOKENS[kind]);
  } catch (_) {
    // No storage (private mode): the token lasts as long as the view.
  }
}

/** withToken appends ?token= (or &token=) to url when token is set. */
function withToken(url, token) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + new URLSearchParams({ token });
}

/**
 * tokenForm is a token field with Apply and Clear buttons: onChange(token)
 * is called with the new value (trimmed, "" when cleared).
 */
function tokenForm(id, label, value, onChange) {
  const input = h("input", { id, type: "password", value, autocomplete: "off", spellcheck: "false", placeholder: "none", "aria-label": label });
  const clear = h("button", { type: "button", id: id + "-clear" }, "Clear");
  const form = h("form", { class: "row token" }, h("label", {}, label + " ", input), h("button", { type: "submit", id: id + "-apply" }, "Apply"), clear);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onChange(input.value.trim());
  });
  clear.addEventListener("click", () => {
    input.value = "";
    onChange("");
  });
  return form;
}

/** authHint adds to a player error what to do when it is an auth refusal. */
function authHint(msg, token) {
  if (!/HTTP 40[13]\b/.test(msg || "")) return msg;
  return msg + (token
    ? " — the server refused the play token (expired, or for another path or action?)."
    : " — this stream's app needs a play token (auth: token): paste one in the Play token field.");
}

function errorText(e) {
  if (e instanceof APIError && e.status === 401) return "The API needs a key: sign in.";
  return e && e.message ? e.message : String(e);
}

// ---- routing ----

const hook = { view: "", protocol: "", playback: () => ({ protocol: "", state: "", error: null, frames: 0, time: 0 }) };
window.qconsole = hook;

let leave = []; // cleanups of the view shown
let generation = 0; // changes with every view: stale async work stops

/** ctx is given to a view: its root element, and timers that stop with it. */
function newContext(root) {
  const gen = ++generation;
  return {
    root,
    alive: () => gen === generation,
    every(ms, fn) {
      let timer = null;
      const tick = async () => {
        if (gen !== generation) return;
        try {
          await fn();
        } finally {
          if (gen === generation) timer = setTimeout(tick, ms);
        }
      };
      tick();
      leave.push(() => clearTimeout(timer));
    },
    onLeave(fn) {
      leave.push(fn);
    },
  };
}

function route() {
  for (const fn of leave.splice(0)) {
    try {
      fn();
    } catch (e) {
      console.warn("console: leaving a view", e);
    }
  }
  const hash = location.hash.replace(/^#\/?/, "");
  const [first, ...rest] = hash.split("?")[0].split("/");
  const query = new URLSearchParams(hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : "");
  const root = $("view");
  root.replaceChildren();
  const ctx = newContext(root);
  hook.protocol = "";
  const views = { streams: streamsView, publish: publishView, nodes: nodesView, recordings: recordingsView };
  let name = first || "streams";
  if (name === "streams" && rest.length >= 2) {
    name = "stream";
    streamView(ctx, rest.map(safeDecode).join("/"), query);
  } else if (views[name]) {
    views[name](ctx, query);
  } else {
    name = "streams";
    streamsView(ctx);
  }
  hook.view = name;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === name || (name === "stream" && a.dataset.view === "streams"));
  }
}

// ---- streams ----

function streamsView(ctx) {
  const status = h("p", { class: "muted" }, "Loading…");
  const body = h("div");
  ctx.root.append(h("h1", {}, "Live streams"), status, body);
  ctx.every(POLL_MS, async () => {
    let list, errs;
    try {
      const r = await api("/streams");
      list = r.streams || [];
      errs = r.errors || [];
    } catch (e) {
      status.textContent = errorText(e);
      status.className = "error";
      return;
    }
    if (!ctx.alive()) return;
    // A core node of a cluster lists the streams of every node; the nodes
    // it could not ask are in errors.
    status.className = errs.length ? "error" : "muted";
    status.textContent = `${list.length} stream${list.length === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}` +
      (errs.length ? ` · not listed: the streams of ${errs.map((e) => `${e.node} (${e.message})`).join(", ")}` : "");
    const rows = list.map((s) => {
      const video = (s.tracks || []).find((t) => t.kind === "video");
      const audio = (s.tracks || []).find((t) => t.kind === "audio");
      const per = Object.entries(s.viewers || {}).map(([p, n]) => `${p} ${n}`).join(", ");
      const open = () => (location.hash = "#/streams/" + enc(s.path));
      return h("tr", { class: "link", "data-path": s.path, onclick: open },
        h("td", {}, h("a", { href: "#/streams/" + enc(s.path) }, s.path), s.node ? h("div", { class: "muted" }, s.node) : null),
        h("td", {}, h("span", { class: "badge " + (s.state === "live" ? "live" : "") }, s.state)),
        h("td", {}, video ? trackText(video) : "—", h("br"), h("span", { class: "muted" }, audio ? trackText(audio) : "no audio")),
        h("td", {}, bitrate(s.ingress_bitrate)),
        h("td", {}, String(s.viewers_total || 0), per ? h("div", { class: "muted" }, per) : null),
        h("td", {}, duration(s.uptime_seconds)),
        h("td", {}, s.publisher ? `${s.publisher.protocol} ${s.publisher.remote_addr}` : "—"));
    });
    body.replaceChildren(table(["Path", "State", "Tracks", "Ingress", "Viewers", "Uptime", "Publisher"], rows,
      "No live stream. Publish one, e.g. ffmpeg … -f flv rtmp://HOST:1935/live/cam, or from the Publish tab."));
  });
}

// ---- one stream ----

// The node's RTMP address as the cluster API announces it (host:port), once.
let rtmpAddr = null;
async function rtmpHostPort() {
  if (rtmpAddr !== null) return rtmpAddr;
  rtmpAddr = location.hostname + ":1935";
  try {
    const nodes = (await api("/nodes")).nodes || [];
    const here = nodes.find((n) => n.http && new URL(n.http).host === location.host) || nodes.find((n) => n.rtmp);
    if (here && here.rtmp) {
      const port = here.rtmp.slice(here.rtmp.lastIndexOf(":") + 1);
      rtmpAddr = location.hostname + ":" + port;
    }
  } catch (_) {
    // Older servers have no /api/v1/nodes: keep the default port.
  }
  return rtmpAddr;
}

function playbackURLs(path, rtmp, token) {
  const p = enc(path);
  const o = location.origin;
  const ws = o.replace(/^http/, "ws");
  const t = (u) => withToken(u, token);
  return [
    ["RTMP", t(`rtmp://${rtmp}/${p}`)],
    ["HTTP-FLV", t(`${o}/${p}.flv`)],
    ["WS-FLV", t(`${ws}/${p}.flv`)],
    ["HLS", t(`${o}/${p}/index.m3u8`)],
    // WHEP takes the token as Authorization: Bearer (?token= works too).
    ["WHEP", t(`${o}/${p}/whep`)],
    ["Player page", t(`${o}/${p}/`)],
  ];
}

function copyButton(text) {
  const b = h("button", { type: "button" }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch (_) {
      // No clipboard (not a secure context): select the text instead.
      const code = (b.closest("tr") || b.parentElement).querySelector("code");
      if (code) getSelection().selectAllChildren(code);
      b.textContent = code ? "Selected" : "Copy failed";
    }
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
  return b;
}

// The server's own per-stream jobs, listed among the viewers: not kicked
// from the console (stopping them is the configuration's business).
const JOBS = new Set(["record", "transcode", "hls", "relay"]);

/** viewersOf is the stream's list of viewers, when the API gives one. */
function viewersOf(s) {
  return Array.isArray(s.clients) ? s.clients : null;
}

function streamView(ctx, path, query) {
  let lastStream = null; // the last answer of GET /api/v1/streams/{path}
  let token = (query && query.get("token")) || storedToken("play");
  if (query && query.get("token")) storeToken("play", token);
  const player = h("div", { class: "player" });
  const playerStatus = h("p", { class: "muted", id: "player-status" });
  const buttons = {};
  for (const [p, label] of [["whep", "WebRTC (WHEP)"], ["hls", "HLS"], ["flv", "HTTP-FLV"]]) {
    buttons[p] = h("button", { type: "button", "data-protocol": p, "aria-pressed": "false", onclick: () => play(p) }, label);
  }
  const info = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const viewers = h("div");
  const kickStatus = h("p", { id: "kick-status", class: "muted", role: "status" });
  const urls = h("div");
  const tokenRow = tokenForm("play-token", "Play token", token, (t) => {
    token = t;
    storeToken("play", t);
    showURLs();
    play(hook.protocol || "whep");
  });
  ctx.root.append(
    h("p", {}, h("a", { href: "#/streams" }, "← all streams")),
    h("h1", {}, path),
    h("div", { class: "grid" },
      h("section", {},
        tokenRow,
        h("div", { class: "row", role: "group", "aria-label": "Player protocol" }, Object.values(buttons)),
        player, playerStatus,
        h("h2", {}, "Playback URLs"), urls),
      h("section", {}, info, h("h2", {}, "Viewers"), kickStatus, viewers)));

  function showURLs() {
    rtmpHostPort().then((rtmp) => {
      if (!ctx.alive()) return;
      const rows = playbackURLs(path, rtmp, token).map(([name, url]) =>
        h("tr", {}, h("td", {}, name), h("td", {}, h("code", {}, url)), h("td", {}, copyButton(url))));
      urls.replaceChildren(h("table", { class: "urls" }, h("tbody", {}, rows)));
    });
  }
  showURLs();

  // ---- the player ----
  let stopPlayer = () => {};
  const setStatus = (text, cls) => {
    playerStatus.textContent = cls === "error" ? authHint(text, token) : text;
    playerStatus.className = cls || "muted";
  };
  function play(protocol) {
    stopPlayer();
    stopPlayer = () => {};
    hook.protocol = protocol;
    for (const [p, b] of Object.entries(buttons)) b.setAttribute("aria-pressed", String(p === protocol));
    player.replaceChildren();
    if (protocol === "whep") {
      // The built-in WHEP player page (package web), framed; it passes its
      // query (the token) on to the WHEP endpoint.
      const frame = h("iframe", { src: withToken(`/${enc(path)}/`, token), title: "WebRTC player", allow: "autoplay; fullscreen" });
      player.append(frame);
      setStatus("WebRTC (WHEP) through the built-in player page; it retries by itself while the stream is not live.");
      hook.playback = () => {
        const q = frame.contentWindow && frame.contentWindow.quasipaa;
        const v = frame.contentDocument && frame.contentDocument.querySelector("video");
        return videoState("whep", v, q ? q.state : "loading", q ? q.error : null);
      };
      stopPlayer = () => frame.remove();
    } else if (protocol === "hls") {
      const video = h("video", { controls: true, muted: true, autoplay: true, playsInline: true, "aria-label": "HLS video" });
      video.muted = true;
      player.append(video);
      // The server adds the token to every URI of the playlists it serves.
      const hls = new HLSPlayer(video, withToken(`/${enc(path)}/index.m3u8`, token), (state, msg) => setStatus(msg, state === "error" ? "error" : "muted"));
      hls.start();
      hook.playback = () => videoState("hls", video, hls.state, hls.error);
      stopPlayer = () => hls.stop();
    } else {
      const video = h("video", { controls: true, muted: true, autoplay: true, playsInline: true, "aria-label": "HTTP-FLV video" });
      video.muted = true;
      player.append(video);
      const v = lastStream && (lastStream.tracks || []).find((t) => t.kind === "video");
      const size = v && v.width ? { width: v.width, height: v.height } : undefined;
      const flv = new FLVPlayer(video, withToken(`/${enc(path)}.flv`, token), (state, msg) => setStatus(msg, state === "error" ? "error" : "muted"), size);
      flv.start();
      hook.playback = () => videoState("flv", video, flv.state, flv.error);
      stopPlayer = () => flv.stop();
    }
  }
  ctx.onLeave(() => stopPlayer());
  play("whep");

  // ---- stream details and viewers ----
  ctx.every(POLL_MS, async () => {
    let s;
    try {
      s = await api("/streams/" + enc(path));
      lastStream = s;
    } catch (e) {
      if (!ctx.alive()) return;
      const text = e instanceof APIError && e.status === 404 ? "This stream is not live." : errorText(e);
      info.replaceChildren(h("p", { class: "error" }, text));
      return;
    }
    if (!ctx.alive()) return;
    const dl = [
      ["State", h("span", { class: "badge " + (s.state === "live" ? "live" : "") }, s.state)],
      ["Publisher", s.publisher ? [`${s.publisher.protocol} from ${s.publisher.remote_addr} `,
        h("button", { type: "button", id: "kick-publisher", onclick: (e) => kick(e.target, kickStatus, "/streams/" + enc(path), "the stream") }, "Stop stream")] : "—"],
      ["Uptime", duration(s.uptime_seconds)],
      ["Ingress", bitrate(s.ingress_bitrate)],
      ["Received", `${s.frames_in || 0} frames, ${bytes(s.bytes_in)}`],
      ["Sent", bytes(s.bytes_out)],
      ["Dropped frames", String(s.dropped_frames || 0)],
      ["Viewers", `${s.viewers_total || 0}` + (Object.keys(s.viewers || {}).length ? " (" + Object.entries(s.viewers).map(([p, n]) => `${p} ${n}`).join(", ") + ")" : "")],
    ];
    info.replaceChildren(
      h("table", {}, h("tbody", {}, dl.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
      h("h2", {}, "Tracks"),
      table(["Kind", "Codec"], (s.tracks || []).map((t) => h("tr", {}, h("td", {}, t.kind), h("td", {}, trackText(t)))), "No track yet."));

    const list = viewersOf(s);
    if (!ctx.alive()) return;
    if (!Array.isArray(list)) {
      viewers.replaceChildren(h("p", { class: "muted" }, "This server does not list individual viewers."));
      return;
    }
    viewers.replaceChildren(table(["Protocol", "Address", "Since", "Sent", ""], list.map((v) => h("tr", {},
      h("td", {}, v.protocol || ""),
      h("td", {}, v.remote_addr || ""),
      h("td", {}, since(v.since || "")),
      h("td", {}, bytes(v.bytes_out)),
      h("td", {}, v.id && !JOBS.has(v.protocol)
        ? h("button", { type: "button", "data-client": v.id, "data-protocol": v.protocol, onclick: (e) => kick(e.target, kickStatus, `/clients/${encodeURIComponent(v.id)}?path=${encodeURIComponent(path)}` +
          (s.node ? `&node=${encodeURIComponent(s.node)}` : ""), `${v.protocol} viewer ${v.remote_addr || v.id}`) }, "Kick")
        : h("span", { class: "muted" }, "job")))), "No viewer."));
  });
}

// kick disconnects a client (DELETE /api/v1/clients/{id}?path=…) or a
// stream's publisher (DELETE /api/v1/streams/{path}) and reports the outcome
// in status, which outlives the periodic redrawing of the tables.
async function kick(button, status, endpoint, what) {
  button.disabled = true;
  try {
    await api(endpoint, { method: "DELETE" });
    status.textContent = `Disconnected ${what}.`;
    status.className = "ok";
  } catch (e) {
    button.disabled = false;
    status.textContent = e instanceof APIError && e.status === 405
      ? "This server cannot disconnect clients."
      : `Could not disconnect ${what}: ${errorText(e)}`;
    status.className = "error";
  }
}

/** videoState describes a video element for the test hook. */
function videoState(protocol, video, state, error) {
  const q = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  return {
    protocol,
    state,
    error: error || null,
    frames: q ? q.totalVideoFrames : 0,
    dropped: q ? q.droppedVideoFrames : 0,
    time: video ? video.currentTime : 0,
    audioBytes: video && video.webkitAudioDecodedByteCount ? video.webkitAudioDecodedByteCount : 0,
    width: video ? video.videoWidth : 0,
    height: video ? video.videoHeight : 0,
  };
}

// ---- publish ----

function publishView(ctx, query) {
  const input = h("input", { id: "publish-path", value: query.get("path") || "live/cam", required: true, "aria-label": "Stream path" });
  const start = h("button", { type: "submit", class: "primary" }, "Start");
  const stage = h("div", { class: "player" });
  const note = h("p", { class: "muted" }, "Publishes this browser's camera and microphone over WebRTC (WHIP), with the built-in publish page. " +
    "Apps with auth: token need a publish token (quasipaa token --action publish …).");
  const token = h("input", { id: "publish-token", type: "password", value: query.get("token") || storedToken("publish"), autocomplete: "off",
    spellcheck: "false", placeholder: "none", "aria-label": "Publish token" });
  const form = h("form", { class: "row" }, h("label", {}, "Path ", input), h("label", {}, "Token ", token), start);
  let frame = null;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const path = input.value.trim().replace(/^\/+|\/+$/g, "");
    if (!/^[^/]+\/[^/]+$/.test(path)) {
      note.textContent = "The path is app/stream, e.g. live/cam.";
      note.className = "error";
      return;
    }
    const t = token.value.trim();
    storeToken("publish", t);
    if (frame) frame.remove();
    // The publish page passes its query (the token) on to the WHIP endpoint.
    frame = h("iframe", { src: withToken(`/${enc(path)}/publish`, t), title: "WebRTC publisher", allow: "camera; microphone; autoplay" });
    stage.replaceChildren(frame);
    note.className = "muted";
    note.replaceChildren("Publishing to ", h("a", { href: "#/streams/" + enc(path) }, path), ". Leave this page to stop.");
    hook.playback = () => {
      const q = frame.contentWindow && frame.contentWindow.quasipaa;
      return { protocol: "whip", state: q ? q.state : "loading", error: q ? q.error : null, frames: 0, time: 0 };
    };
  });
  ctx.onLeave(() => frame && frame.remove());
  ctx.root.append(h("h1", {}, "Publish from this browser"), form, note, stage);
}

// ---- nodes ----

function nodesView(ctx) {
  const status = h("p", { class: "muted" }, "Loading…");
  const body = h("div");
  ctx.root.append(h("h1", {}, "Cluster nodes"), status, body);
  const refresh = async () => {
    let nodes;
    try {
      nodes = (await api("/nodes")).nodes || [];
    } catch (e) {
      if (!ctx.alive()) return;
      status.className = e instanceof APIError && e.status === 404 ? "muted" : "error";
      status.textContent = e instanceof APIError && e.status === 404
        ? "This server has no cluster API (GET /api/v1/nodes answers 404): it runs as a single node."
        : errorText(e);
      return;
    }
    if (!ctx.alive()) return;
    status.className = "muted";
    status.textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}`;
    const rows = nodes.map((n) => {
      const l = n.load || {};
      const cpu = l.cores ? `${Math.round((100 * (l.cpu || 0)) / l.cores)} % of ${l.cores} cores` : `${(l.cpu || 0).toFixed(2)} cores`;
      const button = h("button", { type: "button", "data-node": n.id }, n.draining ? "Undrain" : "Drain");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api(`/nodes/${encodeURIComponent(n.id)}/drain`, { method: n.draining ? "DELETE" : "PUT" });
          await refresh();
        } catch (e) {
          button.disabled = false;
          button.title = errorText(e);
          status.className = "error";
          status.textContent = `${n.draining ? "Undrain" : "Drain"} ${n.id}: ${errorText(e)}`;
        }
      });
      return h("tr", { "data-node": n.id },
        h("td", {}, n.id, n.draining ? [" ", h("span", { class: "badge draining" }, "draining")] : null,
          h("div", { class: "muted" }, [n.region, n.version].filter(Boolean).join(" · "))),
        h("td", {}, (n.roles || []).join(", ")),
        h("td", {}, n.http || "", n.rtmp ? h("div", { class: "muted" }, "rtmp " + n.rtmp) : null),
        h("td", {}, cpu),
        h("td", {}, `${l.connections || 0}`, h("div", { class: "muted" }, `${l.publishers || 0} pub · ${l.viewers || 0} view · ${l.streams || 0} streams`)),
        h("td", {}, "in " + bitrate(l.ingress_bps), h("br"), "out " + bitrate(l.egress_bps)),
        h("td", {}, "up " + since(n.started), h("div", { class: "muted" }, "seen " + since(n.seen) + " ago")),
        h("td", {}, button));
    });
    body.replaceChildren(table(["Node", "Roles", "Addresses", "CPU", "Connections", "Bit rate", "Time", ""], rows, "No node."));
  };
  ctx.every(POLL_MS, refresh);
}

// ---- recordings ----

/** localInput formats a Date for <input type="datetime-local">. */
function localInput(d) {
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

function recordingsView(ctx, query) {
  const now = new Date();
  const path = h("input", { id: "rec-path", value: query.get("path") || "", placeholder: "live/cam", list: "rec-streams", required: true, "aria-label": "Stream path" });
  const streams = h("datalist", { id: "rec-streams" });
  const from = h("input", { id: "rec-from", type: "datetime-local", value: localInput(new Date(now - 3600e3)), "aria-label": "From" });
  const to = h("input", { id: "rec-to", type: "datetime-local", value: localInput(new Date(now.getTime() + 60e3)), "aria-label": "To" });
  const form = h("form", { class: "row" }, h("label", {}, "Path ", path), streams,
    h("label", {}, "From ", from), h("label", {}, "To ", to), h("button", { type: "submit", class: "primary" }, "List"));
  const status = h("p", { class: "muted" });
  const list = h("div");
  const player = h("div", { class: "player" });
  const playerStatus = h("p", { class: "muted" });
  let stop = () => {};
  ctx.onLeave(() => stop());
  ctx.root.append(h("h1", {}, "Recordings"), form, status, list, player, playerStatus);

  api("/streams").then((r) => {
    for (const s of (r && r.streams) || []) streams.append(h("option", { value: s.path }));
  }).catch(() => {});

  const iso = (input) => (input.value ? new Date(input.value).toISOString() : "");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const p = path.value.trim();
    const q = new URLSearchParams({ path: p });
    if (from.value) q.set("from", iso(from));
    if (to.value) q.set("to", iso(to));
    status.className = "muted";
    status.textContent = "Loading…";
    let r;
    try {
      r = await api("/recordings?" + q);
    } catch (err) {
      if (!ctx.alive()) return;
      status.className = "error";
      status.textContent = err instanceof APIError && err.status === 404 && err.code === "not_found"
        ? "This server stores no recordings (see apps[].record in the configuration)."
        : errorText(err);
      list.replaceChildren();
      return;
    }
    if (!ctx.alive()) return;
    const spans = r.spans || [];
    status.textContent = `${spans.length} span${spans.length === 1 ? "" : "s"}, ${duration(r.total_duration)} recorded, ${bytes(r.total_size)}`;
    list.replaceChildren(table(["Start", "End", "Duration", "Size", ""], spans.map((s) => {
      const range = new URLSearchParams({ from: s.start, to: s.end });
      const hlsURL = `/vod/${enc(p)}/index.m3u8?${range}`;
      const mp4URL = `/vod/${enc(p)}.mp4?${range}`;
      return h("tr", {},
        h("td", {}, new Date(s.start).toLocaleString()),
        h("td", {}, new Date(s.end).toLocaleString()),
        h("td", {}, duration(s.duration)),
        h("td", {}, bytes(s.size)),
        h("td", {}, h("button", { type: "button", onclick: () => playSpan(hlsURL) }, "Play"), " ",
          h("a", { href: mp4URL, download: "" }, "Download MP4")));
    }), "Nothing recorded in this range."));
  });

  function playSpan(url) {
    stop();
    const video = h("video", { controls: true, muted: true, autoplay: true, playsInline: true, "aria-label": "Recording" });
    video.muted = true;
    player.replaceChildren(video);
    const hls = new HLSPlayer(video, url, (state, msg) => {
      playerStatus.textContent = msg;
      playerStatus.className = state === "error" ? "error" : "muted";
    });
    hls.start();
    hook.protocol = "hls";
    hook.playback = () => videoState("hls", video, hls.state, hls.error);
    stop = () => hls.stop();
  }
  if (query.get("path")) form.requestSubmit();
}

// ---- sign in ----

let signingIn = false;
function showLogin(err) {
  if (signingIn) return;
  signingIn = true;
  const dlg = $("login");
  $("login-message").textContent = key() ? "The API refused the key: enter another one." : "This server's API needs a key.";
  $("login-error").textContent = "";
  setKey("");
  $("signout").hidden = true;
  if (!dlg.open) dlg.showModal();
  $("login-key").focus();
  console.info("console: the API asks for a key", err && err.message);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const k = $("login-key").value.trim();
  if (!k) return;
  setKey(k);
  $("login-submit").disabled = true;
  try {
    await api("/streams");
    signingIn = false;
    $("login").close();
    $("login-key").value = "";
    $("signout").hidden = false;
    route();
  } catch (err) {
    setKey("");
    $("login-error").textContent = err instanceof APIError && err.status === 401 ? "Wrong key." : errorText(err);
  } finally {
    $("login-submit").disabled = false;
  }
});

// Escape would close the dialog and leave every view failing: keep it open.
$("login").addEventListener("cancel", (e) => e.preventDefault());

$("signout").addEventListener("click", () => {
  setKey("");
  storeToken("play", "");
  storeToken("publish", "");
  $("signout").hidden = true;
  route();
});

onUnauthorized(showLogin);
$("signout").hidden = !key();
window.addEventListener("hashchange", route);
route();
