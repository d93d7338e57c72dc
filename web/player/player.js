// quasipaa built-in pages: a WebRTC player (WHEP, RFC 9725) and a camera
// publisher (WHIP, RFC 9725). Plain browser APIs, no dependencies, no build.
//
// The page at /{app}/{stream}/ plays; the page at /{app}/{stream}/publish
// publishes. Both talk to the endpoint next to them ("whep" or "whip"), so
// they also work behind a reverse proxy that adds a path prefix. The page's
// query string is passed on to the endpoint (e.g. ?secret=…), except
// relay=1, which forces the ICE transport policy "relay" (TURN only).
//
// Test hooks, on window.quasipaa:
//   mode     "play" or "publish"
//   path     the stream path, "app/stream"
//   state    "starting", "capturing", "negotiating", "connecting",
//            "connected", "retrying", "failed" (no retry) or "stopped"
//   error    the last error message, or null
//   session  the session URL (the Location of the WHIP/WHEP answer), or null
//   pc       the current RTCPeerConnection, or null
//   stats()  a Promise of a plain object computed from pc.getStats()
"use strict";

(() => {
  const body = document.body;
  const mode = body.dataset.mode === "publish" ? "publish" : "play";
  const query = new URLSearchParams(location.search);
  const relay = query.get("relay") === "1";
  query.delete("relay");

  // The stream path is the two directory segments before the page's own name.
  const dirs = location.pathname.replace(/[^/]*$/, "").split("/").filter(Boolean);
  const path = dirs.slice(-2).map((s) => safeDecode(s)).join("/");
  const endpoint = new URL(mode === "play" ? "whep" : "whip", location.href);
  endpoint.search = query.toString();

  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const statusEl = $("status");
  const detailsEl = $("details");

  const q = {
    mode,
    path,
    state: "starting",
    error: null,
    session: null,
    pc: null,
    stats: () => collectStats(q.pc),
  };
  window.quasipaa = q;

  const GATHER_TIMEOUT_MS = 1000;
  const REQUEST_TIMEOUT_MS = 10000;
  const CONNECT_TIMEOUT_MS = 15000;
  const DISCONNECTED_GRACE_MS = 5000;

  const STALL_MS = 10000;

  // runId changes on every start and stop: a loop with an older id ends.
  let runId = 0;
  let wake = null; // ends the current wait (retry delay or live session)

  function safeDecode(s) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return s;
    }
  }

  function setState(state, message) {
    q.state = state;
    statusEl.dataset.state = state;
    statusEl.textContent = message;
  }

  function setError(err) {
    q.error = err && err.message ? err.message : String(err);
    console.warn("quasipaa:", q.error);
  }

  function sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async function request(url, init) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    try {
      return await fetch(url, Object.assign({ signal: ctl.signal, cache: "no-store" }, init));
    } catch (e) {
      if (e && e.name === "AbortError") throw new Error(`${init.method} ${url.pathname || url}: timed out`);
      throw e;
    } finally {
      clearTimeout(t);
    }
  }

  class HTTPError extends Error {
    constructor(status, text) {
      // The server's errors are {"error": {"code", "message"}}: show the message.
      let msg = text ? text.trim() : "";
      try {
        const j = JSON.parse(msg);
        if (j && j.error && j.error.message) msg = j.error.message;
      } catch (_) { /* not JSON */ }
      super(`HTTP ${status}${msg ? ": " + msg.slice(0, 300) : ""}`);
      this.status = status;
    }
  }

  // ---- ICE servers from Link headers (RFC 9725 section 4.6) ----

  // splitOutside splits s on sep, except inside <…> and "…".
  function splitOutside(s, sep) {
    const out = [];
    let cur = "";
    let quoted = false;
    let angle = false;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (quoted) {
        cur += c;
        if (c === "\\" && i + 1 < s.length) cur += s[++i];
        else if (c === '"') quoted = false;
        continue;
      }
      if (angle) {
        cur += c;
        if (c === ">") angle = false;
        continue;
      }
      if (c === sep) {
        out.push(cur);
        cur = "";
        continue;
      }
      if (c === '"') quoted = true;
      else if (c === "<") angle = true;
      cur += c;
    }
    if (cur.trim()) out.push(cur);
    return out;
  }

  // parseLinks turns Link header values into RTCIceServer entries.
  function parseLinks(header) {
    const servers = [];
    if (!header) return servers;
    for (const link of splitOutside(header, ",")) {
      const m = /^\s*<([^>]*)>(.*)$/s.exec(link);
      if (!m) continue;
      const params = {};
      for (const p of splitOutside(m[2], ";")) {
        const eq = p.indexOf("=");
        const key = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
        if (!key) continue;
        let value = eq < 0 ? "" : p.slice(eq + 1).trim();
        if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') {
          value = value.slice(1, -1).replace(/\\(.)/g, "$1");
        }
        if (!(key in params)) params[key] = value;
      }
      if (!(params.rel || "").toLowerCase().split(/\s+/).includes("ice-server")) continue;
      const url = m[1].trim();
      const server = { urls: url };
      if (/^turns?:/i.test(url)) {
        // A TURN server without credentials would make RTCPeerConnection throw.
        if (params.username === undefined || params.credential === undefined) continue;
        if (params["credential-type"] && params["credential-type"] !== "password") continue;
        server.username = params.username;
        server.credential = params.credential;
      } else if (!/^stuns?:/i.test(url)) {
        continue;
      }
      servers.push(server);
    }
    return servers;
  }

  const hasTURN = (servers) => servers.some((s) => /^turns?:/i.test(s.urls));

  // iceServers reads the ICE servers the endpoint advertises in answer to
  // OPTIONS. When relaying is forced and OPTIONS names no TURN server, it
  // asks with a throwaway offer instead, whose session it deletes at once.
  async function iceServers() {
    let servers = [];
    try {
      const r = await request(endpoint, { method: "OPTIONS" });
      servers = parseLinks(r.headers.get("Link"));
    } catch (e) {
      console.warn("quasipaa: OPTIONS", endpoint.href, e);
    }
    if (relay && !hasTURN(servers)) servers = servers.concat(await iceServersFromOffer());
    return servers;
  }

  async function iceServersFromOffer() {
    const pc = new RTCPeerConnection();
    try {
      const direction = mode === "play" ? "recvonly" : "sendonly";
      pc.addTransceiver("video", { direction });
      pc.addTransceiver("audio", { direction });
      await pc.setLocalDescription(await pc.createOffer());
      const r = await request(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
      const loc = r.headers.get("Location");
      if (r.ok && loc) fetch(new URL(loc, endpoint), { method: "DELETE" }).catch(() => {});
      if (!r.ok) throw new HTTPError(r.status, await r.text());
      return parseLinks(r.headers.get("Link"));
    } finally {
      pc.close();
    }
  }

  async function newPeerConnection() {
    const servers = await iceServers();
    if (relay && !hasTURN(servers)) {
      throw new Error("relay=1 but the server advertises no TURN server");
    }
    const config = { iceServers: servers, bundlePolicy: "max-bundle" };
    if (relay) config.iceTransportPolicy = "relay";
    try {
      return new RTCPeerConnection(config);
    } catch (e) {
      console.warn("quasipaa: ICE servers rejected, going without them", servers, e);
      if (relay) throw e;
      return new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    }
  }

  // ---- WHIP/WHEP exchange ----

  // gathered resolves to true once ICE gathering is complete, false after ms.
  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v) => {
        clearTimeout(t);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve(v);
      };
      const check = () => {
        if (pc.iceGatheringState === "complete") done(true);
      };
      const t = setTimeout(() => done(false), ms);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  // Session is one WHIP/WHEP session: the offer/answer exchange, trickle ICE
  // for the candidates gathered after the offer was sent, and DELETE.
  class Session {
    constructor(pc) {
      this.pc = pc;
      this.url = null;
      this.etag = null;
      this.posted = null; // the offer as sent; null until the answer is set
      this.queue = [];
      this.ended = false;
      this.trickle = true;
      this.flushing = null;
      pc.addEventListener("icecandidate", (e) => {
        if (!e.candidate || !e.candidate.candidate) this.queue.push(null);
        else this.queue.push(e.candidate);
        this.flush();
      });
    }

    async negotiate() {
      const pc = this.pc;
      await pc.setLocalDescription(await pc.createOffer());
      // A complete offer needs no trickle ICE.
      this.trickle = !(await gathered(pc, GATHER_TIMEOUT_MS));
      const offer = pc.localDescription.sdp;
      const r = await request(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: offer,
      });
      const text = await r.text();
      if (r.status !== 201 && r.status !== 200) throw new HTTPError(r.status, text);
      const loc = r.headers.get("Location");
      this.url = loc ? new URL(loc, endpoint).href : null;
      this.etag = r.headers.get("ETag");
      q.session = this.url;
      await pc.setRemoteDescription({ type: "answer", sdp: text });
      this.posted = offer;
      this.flush();
    }

    // flush sends the candidates the posted offer did not carry (RFC 8840
    // fragments); a server without trickle ICE support makes it stop.
    flush() {
      if (!this.posted || !this.url || !this.trickle || this.ended || this.flushing) return;
      // A candidate the offer had: same foundation, component, transport,
      // priority, address and port (the SDP form drops the extensions).
      const sent = (c) => this.posted.includes("a=" + c.candidate.split(" ").slice(0, 6).join(" ") + " ");
      const batch = this.queue.splice(0).filter((c) => c === null || !sent(c));
      if (batch.length === 0 || (batch.length === 1 && batch[0] === null && this.posted.includes("a=end-of-candidates"))) return;
      this.flushing = this.patch(batch)
        .catch((e) => console.warn("quasipaa: trickle ICE", e))
        .finally(() => {
          this.flushing = null;
          if (this.queue.length) this.flush();
        });
    }

    async patch(batch) {
      const ufrag = /a=ice-ufrag:(\S+)/.exec(this.posted);
      const pwd = /a=ice-pwd:(\S+)/.exec(this.posted);
      const mid = /a=mid:(\S+)/.exec(this.posted);
      if (!ufrag || !pwd || !mid) return;
      const byMid = new Map();
      let end = false;
      for (const c of batch) {
        if (c === null) {
          end = true;
          continue;
        }
        const m = c.sdpMid != null ? c.sdpMid : mid[1];
        if (!byMid.has(m)) byMid.set(m, []);
        byMid.get(m).push(c.candidate);
      }
      if (byMid.size === 0) byMid.set(mid[1], []);
      let frag = `a=ice-ufrag:${ufrag[1]}\r\na=ice-pwd:${pwd[1]}\r\n`;
      for (const [m, lines] of byMid) {
        frag += `m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:${m}\r\n`;
        for (const l of lines) frag += `a=${l.replace(/^a=/, "")}\r\n`;
        if (end) frag += "a=end-of-candidates\r\n";
      }
      const headers = { "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": this.etag || "*" };
      const r = await request(new URL(this.url), { method: "PATCH", headers, body: frag });
      if (r.status === 405 || r.status === 501) this.trickle = false;
      else if (!r.ok) throw new HTTPError(r.status, await r.text());
    }

    // end closes the peer connection and deletes the session on the server.
    end(keepalive) {
      if (this.ended) return;
      this.ended = true;
      this.pc.close();
      if (this.url) {
        fetch(this.url, { method: "DELETE", keepalive: !!keepalive }).catch(() => {});
      }
    }
  }

  // connState is pc.connectionState, or what iceConnectionState says of it
  // in browsers without connectionState.
  function connState(pc) {
    if (pc.connectionState) return pc.connectionState;
    const ice = pc.iceConnectionState;
    return ice === "completed" ? "connected" : ice === "checking" ? "connecting" : ice;
  }

  // live resolves when the connection is lost for good: not connected within
  // CONNECT_TIMEOUT_MS, failed, closed, disconnected for longer than
  // DISCONNECTED_GRACE_MS, or (playing) no media received for STALL_MS.
  function live(pc) {
    return new Promise((resolve) => {
      let timer = setTimeout(() => finish("could not connect"), CONNECT_TIMEOUT_MS);
      let lastBytes = -1;
      let lastChange = performance.now();
      const stall = setInterval(async () => {
        if (mode !== "play" || connState(pc) !== "connected") return;
        const s = await collectStats(pc).catch(() => null);
        if (!s) return;
        const now = performance.now();
        if (s.bytesReceived !== lastBytes) {
          lastBytes = s.bytesReceived;
          lastChange = now;
        } else if (now - lastChange > STALL_MS) {
          finish("no media received");
        }
      }, 2000);
      const finish = (why) => {
        clearTimeout(timer);
        clearInterval(stall);
        pc.removeEventListener("connectionstatechange", check);
        pc.removeEventListener("iceconnectionstatechange", check);
        resolve(why);
      };
      const check = () => {
        const s = connState(pc);
        if (s === "connected") {
          clearTimeout(timer);
          timer = null;
          setState("connected", mode === "play" ? `Playing ${path}` : `Publishing ${path}`);
        } else if (s === "failed" || s === "closed") {
          finish(`connection ${s}`);
        } else if (s === "disconnected" && !timer) {
          setState("connecting", "Connection interrupted, waiting…");
          timer = setTimeout(() => finish("connection lost"), DISCONNECTED_GRACE_MS);
        }
      };
      wake = () => finish("stopped");
      pc.addEventListener("connectionstatechange", check);
      pc.addEventListener("iceconnectionstatechange", check);
      check();
    });
  }

  // ---- play ----

  function setupPlay(pc) {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", (e) => {
      stream.addTrack(e.track);
      if (video.srcObject !== stream) video.srcObject = stream;
      video.play().catch(() => {});
    });
  }

  // ---- publish ----

  let media = null;

  async function capture() {
    if (media) return media;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser cannot capture a camera here (a secure context, https or localhost, is needed)");
    }
    setState("capturing", "Waiting for the camera and microphone…");
    media = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      audio: true,
    });
    video.srcObject = media;
    video.play().catch(() => {});
    return media;
  }

  // preferH264 puts H.264 first (packetization-mode=1, constrained baseline
  // first), keeping the other codecs as fallbacks.
  function preferH264(transceiver) {
    if (typeof transceiver.setCodecPreferences !== "function") return;
    for (const source of [window.RTCRtpSender, window.RTCRtpReceiver]) {
      const caps = source && source.getCapabilities && source.getCapabilities("video");
      if (!caps) continue;
      const isH264 = (c) => c.mimeType.toLowerCase() === "video/h264";
      const score = (c) => {
        const f = c.sdpFmtpLine || "";
        return (/packetization-mode=1/.test(f) ? 2 : 0) + (/profile-level-id=42e0/i.test(f) ? 1 : 0);
      };
      const h264 = caps.codecs.filter(isH264).sort((a, b) => score(b) - score(a));
      if (h264.length === 0) return;
      try {
        transceiver.setCodecPreferences(h264.concat(caps.codecs.filter((c) => !isH264(c))));
        return;
      } catch (e) {
        console.warn("quasipaa: setCodecPreferences", e);
      }
    }
  }

  function setupPublish(pc, stream) {
    for (const track of stream.getTracks()) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (track.kind === "video") preferH264(t);
    }
  }

  // ---- stats ----

  async function collectStats(pc) {
    const out = {
      state: q.state,
      connectionState: pc ? connState(pc) : "none",
      framesDecoded: 0,
      framesDropped: 0,
      framesEncoded: 0,
      frameWidth: 0,
      frameHeight: 0,
      framesPerSecond: 0,
      totalSamplesReceived: 0,
      audioSamplesReceived: 0,
      concealedSamples: 0,
      videoCodec: "",
      audioCodec: "",
      bytesReceived: 0,
      bytesSent: 0,
      packetsReceived: 0,
      packetsSent: 0,
      packetsLost: 0,
      jitterBufferDelay: 0,
      videoJitterBufferMs: 0,
      audioJitterBufferMs: 0,
      encoderImplementation: "",
      qualityLimitationReason: "",
      candidateType: "",
      localCandidateType: "",
      remoteCandidateType: "",
      relayProtocol: "",
      roundTripTimeMs: 0,
    };
    if (!pc) return out;
    const report = await pc.getStats();
    const get = (id) => (id ? report.get(id) : undefined);
    const codec = (s) => {
      const c = get(s.codecId);
      return c && c.mimeType ? c.mimeType : "";
    };
    const jitterMs = (s) => (s.jitterBufferEmittedCount ? (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount : 0);
    let pairId = "";
    report.forEach((s) => {
      const kind = s.kind || s.mediaType;
      if (s.type === "inbound-rtp") {
        out.bytesReceived += s.bytesReceived || 0;
        out.packetsReceived += s.packetsReceived || 0;
        out.packetsLost += s.packetsLost || 0;
        if (kind === "video") {
          out.framesDecoded += s.framesDecoded || 0;
          out.framesDropped += s.framesDropped || 0;
          out.frameWidth = s.frameWidth || out.frameWidth;
          out.frameHeight = s.frameHeight || out.frameHeight;
          out.framesPerSecond = s.framesPerSecond || out.framesPerSecond;
          out.videoCodec = codec(s) || out.videoCodec;
          out.jitterBufferDelay = s.jitterBufferDelay || 0;
          out.videoJitterBufferMs = jitterMs(s);
        } else if (kind === "audio") {
          out.totalSamplesReceived += s.totalSamplesReceived || 0;
          out.concealedSamples += s.concealedSamples || 0;
          out.audioCodec = codec(s) || out.audioCodec;
          out.audioJitterBufferMs = jitterMs(s);
        }
      } else if (s.type === "outbound-rtp") {
        out.bytesSent += s.bytesSent || 0;
        out.packetsSent += s.packetsSent || 0;
        if (kind === "video") {
          out.framesEncoded += s.framesEncoded || 0;
          out.frameWidth = s.frameWidth || out.frameWidth;
          out.frameHeight = s.frameHeight || out.frameHeight;
          out.framesPerSecond = s.framesPerSecond || out.framesPerSecond;
          out.videoCodec = codec(s) || out.videoCodec;
          out.encoderImplementation = s.encoderImplementation || out.encoderImplementation;
          out.qualityLimitationReason = s.qualityLimitationReason || out.qualityLimitationReason;
        } else if (kind === "audio") {
          out.audioCodec = codec(s) || out.audioCodec;
        }
      } else if (s.type === "transport" && s.selectedCandidatePairId) {
        pairId = s.selectedCandidatePairId;
      } else if (s.type === "candidate-pair" && s.selected && !pairId) {
        pairId = s.id; // Firefox
      }
    });
    if (!pairId) {
      report.forEach((s) => {
        if (!pairId && s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pairId = s.id;
      });
    }
    const pair = get(pairId);
    if (pair) {
      const local = get(pair.localCandidateId);
      const remote = get(pair.remoteCandidateId);
      out.localCandidateType = (local && local.candidateType) || "";
      out.remoteCandidateType = (remote && remote.candidateType) || "";
      out.relayProtocol = (local && local.relayProtocol) || "";
      out.candidateType = out.localCandidateType;
      out.roundTripTimeMs = pair.currentRoundTripTime ? pair.currentRoundTripTime * 1000 : 0;
    }
    out.audioSamplesReceived = out.totalSamplesReceived;
    return out;
  }

  // The details line: codec, size, frame rate, bit rate, path type.
  let lastBytes = 0;
  let lastTime = 0;
  async function showDetails() {
    if (!q.pc || q.state !== "connected") {
      detailsEl.textContent = "";
      lastBytes = 0;
      lastTime = 0;
      return;
    }
    try {
      const s = await q.stats();
      const bytes = mode === "play" ? s.bytesReceived : s.bytesSent;
      const now = performance.now();
      const kbps = lastTime && bytes >= lastBytes ? Math.round((8 * (bytes - lastBytes)) / (now - lastTime)) : 0;
      lastBytes = bytes;
      lastTime = now;
      const parts = [];
      if (s.videoCodec) parts.push(s.videoCodec.replace(/^video\//, ""));
      if (s.frameWidth) parts.push(`${s.frameWidth}×${s.frameHeight}`);
      if (s.framesPerSecond) parts.push(`${Math.round(s.framesPerSecond)} fps`);
      if (s.audioCodec) parts.push(s.audioCodec.replace(/^audio\//, ""));
      if (kbps) parts.push(`${kbps} kbit/s`);
      if (s.candidateType) parts.push(s.candidateType === "relay" ? "via TURN" : s.candidateType);
      detailsEl.textContent = parts.join(" · ");
    } catch (_) {
      detailsEl.textContent = "";
    }
  }

  // ---- the connection loop ----

  let current = null;

  async function connectOnce(id) {
    let stream = null;
    if (mode === "publish") stream = await capture();
    setState("negotiating", mode === "play" ? `Connecting to ${path}…` : `Starting to publish ${path}…`);
    const pc = await newPeerConnection();
    const session = new Session(pc);
    current = session;
    q.pc = pc;
    q.session = null;
    try {
      if (mode === "play") setupPlay(pc);
      else setupPublish(pc, stream);
      await session.negotiate();
      if (id !== runId) return;
      setState("connecting", "Connecting…");
      q.error = null;
      const why = await live(pc);
      if (id === runId) throw new Error(why);
    } finally {
      session.end(false);
      if (current === session) current = null;
    }
  }

  async function run(id) {
    let delay = 1000;
    while (id === runId) {
      try {
        await connectOnce(id);
      } catch (e) {
        if (id !== runId) break;
        setError(e);
        if (e && (e.name === "NotAllowedError" || e.name === "NotFoundError" || e.name === "NotReadableError" || /secure context/.test(String(e.message)))) {
          setState("failed", `Cannot use the camera or microphone: ${q.error}`);
          return;
        }
        const secs = Math.round(delay / 1000);
        const what = e && e.status === 404 ? (mode === "play" ? "The stream is not live" : "Publishing is not possible here") : `Error: ${q.error}`;
        setState("retrying", `${what}; trying again in ${secs} s…`);
        await sleep(delay);
        delay = Math.min(delay * 2, 8000);
        continue;
      }
      delay = 1000;
    }
  }

  function start() {
    run(++runId);
  }

  function stop(keepalive) {
    runId++;
    if (current) current.end(keepalive);
    if (wake) wake();
    setState("stopped", mode === "play" ? "Stopped" : "Not publishing");
  }

  // ---- page wiring ----

  document.title = `${path} · ${mode === "play" ? "quasipaa player" : "quasipaa publisher"}`;
  $("title").textContent = mode === "play" ? path : `Publish ${path}`;

  if (mode === "play") {
    const mute = $("mute");
    const syncMute = () => {
      mute.textContent = video.muted ? "Unmute" : "Mute";
      mute.setAttribute("aria-pressed", String(!video.muted));
    };
    mute.addEventListener("click", () => {
      video.muted = !video.muted;
      video.play().catch(() => {});
      syncMute();
    });
    video.addEventListener("volumechange", syncMute);
    const fs = $("fullscreen");
    if (!document.fullscreenEnabled && !video.webkitEnterFullscreen) fs.hidden = true;
    fs.addEventListener("click", () => {
      if (video.requestFullscreen) video.requestFullscreen().catch(() => {});
      else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
    });
  } else {
    const toggle = $("toggle");
    toggle.addEventListener("click", () => {
      if (q.state === "stopped") {
        toggle.textContent = "Stop";
        start();
      } else {
        toggle.textContent = "Start";
        stop(false);
        if (media) {
          for (const t of media.getTracks()) t.stop();
          media = null;
          video.srcObject = null;
        }
      }
    });
  }

  window.addEventListener("pagehide", () => stop(true));
  // Back from the back/forward cache: the session was deleted on pagehide.
  window.addEventListener("pageshow", (e) => {
    if (e.persisted && mode === "play" && q.state === "stopped") start();
  });
  setInterval(showDetails, 1000);

  if (typeof RTCPeerConnection !== "function") {
    setState("failed", "This browser does not support WebRTC.");
    q.error = "no RTCPeerConnection";
  } else {
    start();
  }
})();
