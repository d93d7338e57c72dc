// A minimal HLS player for fMP4 playlists, on Media Source Extensions.
//
// What it does: reads a multivariant playlist (first variant, plus its
// default audio rendition when audio is separate) or a media playlist; for
// each media playlist it appends the EXT-X-MAP init segment, then the
// segments in media sequence order to one SourceBuffer; a live playlist
// (no EXT-X-ENDLIST) is polled for new segments and playback is kept near
// the live edge; a VOD playlist is appended in "sequence" mode, so that runs
// separated by EXT-X-DISCONTINUITY (each with its own EXT-X-MAP and its own
// timeline) play back to back.
//
// Limits (see docs/console.md): fMP4 only (no MPEG-TS), whole segments only
// (Low-Latency parts are not used, so latency is one to two segments more
// than an LL-HLS player's), the first variant only (no adaptive bit rate),
// no encryption, no subtitles. Codecs come from the init segment: H.264,
// H.265, AV1, VP9, AAC, MP3, Opus, as far as the browser's MSE has them.

import { HTTPError, attachMediaSource, sourceBufferUpdate, trimBehind } from "./mse.js";

const MAX_RETRIES = 8; // consecutive failed requests before giving up
const REQUEST_TIMEOUT_MS = 15000;
const FORWARD_BUFFER_S = 30; // VOD: how far ahead to download
const START_TRIES = 10; // seconds to wait for a live playlist's first segment

// ---- playlists ----

/** attrs parses an attribute list: KEY=value,KEY="quoted, value". */
export function attrs(s) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

/**
 * parsePlaylist reads an M3U8 text. A multivariant playlist gives
 * {variants: [{uri, attrs}], media: [attrs]}; a media playlist gives
 * {segments: [{msn, uri, duration, map, discontinuity}], targetDuration,
 * ended}. URIs are resolved against base. Segments marked EXT-X-GAP are left
 * out (their msn is skipped).
 */
export function parsePlaylist(text, base) {
  const lines = text.split(/\r?\n/);
  if (lines[0].trim() !== "#EXTM3U") throw new Error("not an M3U8 playlist");
  const abs = (u) => new URL(u, base).href;
  const variants = [];
  const media = [];
  const segments = [];
  let seq = 0;
  let count = 0;
  let target = 0;
  let ended = false;
  let map = null;
  let gap = false;
  let disc = false;
  let duration = 0;
  let pendingVariant = null;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    if (!line.startsWith("#")) {
      if (pendingVariant) {
        variants.push({ uri: abs(line), attrs: pendingVariant });
        pendingVariant = null;
      } else {
        if (!gap) segments.push({ msn: seq + count, uri: abs(line), duration, map, discontinuity: disc });
        count++;
        gap = false;
        disc = false;
        duration = 0;
      }
      continue;
    }
    const colon = line.indexOf(":");
    const tag = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1);
    switch (tag) {
      case "#EXT-X-STREAM-INF":
        pendingVariant = attrs(value);
        break;
      case "#EXT-X-MEDIA": {
        const a = attrs(value);
        if (a.URI) a.URI = abs(a.URI);
        media.push(a);
        break;
      }
      case "#EXT-X-MEDIA-SEQUENCE":
        seq = parseInt(value, 10) || 0;
        break;
      case "#EXT-X-TARGETDURATION":
        target = parseFloat(value) || 0;
        break;
      case "#EXT-X-MAP": {
        const a = attrs(value);
        if (a.BYTERANGE) throw new Error("EXT-X-MAP with BYTERANGE is not supported");
        map = abs(a.URI);
        break;
      }
      case "#EXT-X-KEY":
        if (!/METHOD=NONE/.test(value)) throw new Error("encrypted HLS is not supported");
        break;
      case "#EXTINF":
        duration = parseFloat(value) || 0;
        break;
      case "#EXT-X-GAP":
        gap = true;
        break;
      case "#EXT-X-DISCONTINUITY":
        disc = true;
        break;
      case "#EXT-X-ENDLIST":
        ended = true;
        break;
      case "#EXT-X-PLAYLIST-TYPE":
        if (value === "VOD") ended = true;
        break;
    }
  }
  if (variants.length > 0) return { variants, media };
  return { segments, targetDuration: target, ended };
}

// ---- codecs from the init segment ----

const VIDEO_ENTRIES = new Set(["avc1", "avc3", "hvc1", "hev1", "av01", "vp09"]);
const AUDIO_ENTRIES = new Set(["mp4a", "Opus"]);
const hex2 = (n) => n.toString(16).padStart(2, "0");
const dec2 = (n) => String(n).padStart(2, "0");

/**
 * codecsFromInit reads the sample entries of an fMP4 init segment and
 * returns {video: "avc1.64001f" | null, audio: "mp4a.40.2" | null}, the
 * RFC 6381 codec strings MSE needs.
 */
export function codecsFromInit(buf) {
  const d = new DataView(buf);
  const out = { video: null, audio: null };
  const fourcc = (p) => String.fromCharCode(d.getUint8(p), d.getUint8(p + 1), d.getUint8(p + 2), d.getUint8(p + 3));
  // boxes calls fn(type, bodyStart, end) for each box in [start, end).
  const boxes = (start, end, fn) => {
    let p = start;
    for (let n = 0; n < 1000 && p + 8 <= end; n++) {
      let size = d.getUint32(p);
      let hdr = 8;
      if (size === 1) {
        if (p + 16 > end) return;
        size = Number(d.getBigUint64(p + 8));
        hdr = 16;
      } else if (size === 0) {
        size = end - p;
      }
      if (size < hdr || p + size > end) return;
      fn(fourcc(p + 4), p + hdr, p + size);
      p += size;
    }
  };
  const walk = (start, end, depth) => {
    if (depth > 8) return;
    boxes(start, end, (type, body, stop) => {
      if (["moov", "trak", "mdia", "minf", "stbl"].includes(type)) walk(body, stop, depth + 1);
      else if (type === "stsd") walk(body + 8, stop, depth + 1);
      else if (VIDEO_ENTRIES.has(type) && body + 78 <= stop) out.video = out.video || videoCodec(type, body + 78, stop);
      else if (AUDIO_ENTRIES.has(type) && body + 28 <= stop) out.audio = out.audio || audioCodec(type, body + 28, stop);
    });
  };
  const videoCodec = (entry, start, end) => {
    let codec = null;
    boxes(start, end, (type, b, stop) => {
      const u8 = (i) => (b + i < stop ? d.getUint8(b + i) : 0);
      if (type === "avcC") {
        codec = `${entry}.${hex2(u8(1))}${hex2(u8(2))}${hex2(u8(3))}`;
      } else if (type === "hvcC") {
        const space = u8(1) >> 6;
        const tier = (u8(1) >> 5) & 1;
        const profile = u8(1) & 31;
        let compat = b + 6 <= stop ? d.getUint32(b + 2) : 0;
        let rev = 0;
        for (let i = 0; i < 32; i++, compat >>>= 1) rev = (rev << 1) | (compat & 1);
        const constraints = [];
        for (let i = 6; i < 12; i++) constraints.push(u8(i));
        while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
        codec = `${entry}.${["", "A", "B", "C"][space]}${profile}.${(rev >>> 0).toString(16)}.${tier ? "H" : "L"}${u8(12)}` +
          constraints.map((c) => "." + c.toString(16).toUpperCase()).join("");
      } else if (type === "av1C") {
        const depth = u8(2) & 0x40 ? (u8(2) & 0x20 ? 12 : 10) : 8;
        codec = `av01.${u8(1) >> 5}.${dec2(u8(1) & 31)}${u8(2) & 0x80 ? "H" : "M"}.${dec2(depth)}`;
      } else if (type === "vpcC") {
        codec = `vp09.${dec2(u8(4))}.${dec2(u8(5))}.${dec2(u8(6) >> 4)}`;
      }
    });
    return codec;
  };
  const audioCodec = (entry, start, end) => {
    if (entry === "Opus") return "opus";
    let codec = null;
    boxes(start, end, (type, b, stop) => {
      if (type !== "esds") return;
      // ES_Descriptor (3) > DecoderConfigDescriptor (4) > DecoderSpecificInfo (5).
      let p = b + 4;
      const descriptor = () => {
        if (p >= stop) return null;
        const tag = d.getUint8(p++);
        let len = 0;
        for (let i = 0; i < 4 && p < stop; i++) {
          const c = d.getUint8(p++);
          len = (len << 7) | (c & 0x7f);
          if (!(c & 0x80)) break;
        }
        return { tag, start: p, end: Math.min(p + len, stop) };
      };
      const es = descriptor();
      if (!es || es.tag !== 3) return;
      const flags = d.getUint8(p + 2);
      p += 3;
      if (flags & 0x80) p += 2;
      if (flags & 0x40) p += 1 + (p < stop ? d.getUint8(p) : 0);
      if (flags & 0x20) p += 2;
      const dc = descriptor();
      if (!dc || dc.tag !== 4 || dc.start + 13 > stop) return;
      const oti = d.getUint8(dc.start);
      if (oti !== 0x40) {
        codec = `mp4a.${hex2(oti).toUpperCase()}`;
        return;
      }
      p = dc.start + 13;
      const dsi = descriptor();
      let aot = 2;
      if (dsi && dsi.tag === 5 && dsi.start < stop) {
        aot = d.getUint8(dsi.start) >> 3;
        if (aot === 31 && dsi.start + 1 < stop) aot = 32 + (((d.getUint8(dsi.start) & 7) << 3) | (d.getUint8(dsi.start + 1) >> 5));
      }
      codec = `mp4a.40.${aot}`;
    });
    return codec || "mp4a.40.2";
  };
  walk(0, d.byteLength, 0);
  return out;
}

// ---- the player ----

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/**
 * HLSPlayer plays one HLS URL into a <video> element. start() returns at
 * once; status changes go to onStatus(state, message) with state one of
 * "loading", "playing", "ended", "error", "stopped".
 */
export class HLSPlayer {
  constructor(video, url, onStatus) {
    this.video = video;
    this.url = new URL(url, location.href).href;
    this.onStatus = onStatus || (() => {});
    this.ctl = new AbortController();
    this.state = "stopped";
    this.error = null;
    this.objectURL = null;
    this.live = true;
    this.target = 2;
    this.started = false;
    this.codecs = [];
  }

  status(state, message) {
    this.state = state;
    if (state === "error") this.error = message;
    this.onStatus(state, message);
  }

  start() {
    this.status("loading", "Loading the playlist…");
    this.run().catch((e) => {
      if (this.ctl.signal.aborted) return;
      console.warn("hls:", e);
      this.status("error", e && e.message ? e.message : String(e));
      this.ctl.abort();
    });
  }

  stop() {
    this.ctl.abort();
    clearInterval(this.edgeTimer);
    this.video.removeAttribute("src");
    this.video.load();
    if (this.objectURL) URL.revokeObjectURL(this.objectURL);
    this.objectURL = null;
    this.status("stopped", "Stopped");
  }

  // fetch GETs url with retries for network errors and 5xx answers.
  async fetch(url, kind) {
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      this.ctl.signal.addEventListener("abort", onAbort);
      const t = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
      try {
        const r = await fetch(url, { signal: ctl.signal, cache: "no-store" });
        if (!r.ok) throw new HTTPError(url, r.status);
        return kind === "text" ? await r.text() : await r.arrayBuffer();
      } catch (e) {
        if (this.ctl.signal.aborted) throw e;
        const retry = !(e instanceof HTTPError) || e.status >= 500;
        if (!retry || attempt >= MAX_RETRIES) throw e;
      } finally {
        clearTimeout(t);
        this.ctl.signal.removeEventListener("abort", onAbort);
      }
      await sleep(delay, this.ctl.signal);
      delay = Math.min(delay * 2, 4000);
    }
  }

  async run() {
    if (typeof MediaSource !== "function") throw new Error("this browser has no Media Source Extensions");
    const signal = this.ctl.signal;
    const top = parsePlaylist(await this.fetch(this.url, "text"), this.url);
    // The media playlists to follow: the first variant, plus its audio
    // rendition when the audio is a separate playlist.
    const uris = [];
    if (top.variants) {
      const v = top.variants[0];
      uris.push(v.uri);
      const group = v.attrs.AUDIO;
      if (group) {
        const audio = top.media.filter((m) => m.TYPE === "AUDIO" && m["GROUP-ID"] === group && m.URI);
        const pick = audio.find((m) => m.DEFAULT === "YES") || audio[0];
        if (pick) uris.push(pick.URI);
      }
    } else {
      uris.push(this.url);
    }
    const tracks = [];
    for (const uri of uris) {
      let pl = uri === this.url ? top : parsePlaylist(await this.fetch(uri, "text"), uri);
      // A live playlist may list no complete segment yet: wait a little.
      for (let i = 0; i < START_TRIES && !pl.variants && !pl.ended && pl.segments.length === 0; i++) {
        await sleep(1000, signal);
        if (signal.aborted) return;
        pl = parsePlaylist(await this.fetch(uri, "text"), uri);
      }
      if (pl.variants) throw new Error("a variant names another multivariant playlist");
      const first = pl.segments.find((s) => s.map);
      if (!first) {
        if (pl.segments.length) throw new Error("no EXT-X-MAP: only fMP4 HLS is supported, not MPEG-TS");
        throw new Error("the playlist has no segment");
      }
      const init = await this.fetch(first.map, "bytes");
      tracks.push({ uri, pl, init, map: first.map });
    }
    this.live = !tracks[0].pl.ended;
    this.target = tracks[0].pl.targetDuration || 2;

    const { ms, objectURL, open } = attachMediaSource(this.video);
    this.objectURL = objectURL;
    await open;
    if (signal.aborted) return;
    // Every SourceBuffer must exist before the first append to any of them.
    for (const t of tracks) {
      const c = codecsFromInit(t.init);
      const list = [c.video, c.audio].filter(Boolean);
      if (list.length === 0) throw new Error("no known codec in the init segment");
      const mime = `${c.video ? "video" : "audio"}/mp4; codecs="${list.join(",")}"`;
      if (!MediaSource.isTypeSupported(mime)) throw new Error(`this browser cannot play ${mime}`);
      t.mime = mime;
      t.sb = ms.addSourceBuffer(mime);
      if (!this.live) t.sb.mode = "sequence";
    }
    this.codecs = tracks.map((t) => t.mime);
    this.edgeTimer = setInterval(() => this.followEdge(), 500);
    this.status("loading", "Buffering…");
    await Promise.all(tracks.map((t) => this.follow(t)));
    if (signal.aborted) return;
    if (ms.readyState === "open") ms.endOfStream();
  }

  // follow appends a media playlist's segments to its SourceBuffer, polling
  // the playlist while it is live.
  async follow(t) {
    const signal = this.ctl.signal;
    let next = null; // media sequence number of the next segment to append
    let map = null; // init segment appended last
    let pl = t.pl;
    for (;;) {
      if (signal.aborted) return;
      const segs = pl.segments;
      if (next === null) {
        // Live: start with the last complete segment; VOD: at the start.
        next = this.live && segs.length ? segs[segs.length - 1].msn : segs.length ? segs[0].msn : 0;
      } else if (segs.length && segs[0].msn > next) {
        next = segs[0].msn; // fell behind the playlist window
      }
      let appended = 0;
      for (const s of segs) {
        if (s.msn < next) continue;
        if (signal.aborted) return;
        if (s.map !== map) {
          const init = s.map === t.map ? t.init : await this.fetch(s.map, "bytes");
          await this.append(t.sb, init);
          map = s.map;
        }
        if (!this.live) await this.waitForRoom(t.sb);
        await this.append(t.sb, await this.fetch(s.uri, "bytes"));
        next = s.msn + 1;
        appended++;
      }
      if (pl.ended) return;
      // Poll a fraction of a segment duration, sooner after news.
      const wait = Math.max(300, Math.min(2000, (this.target * 1000) / (appended ? 4 : 2)));
      await sleep(wait, signal);
      if (signal.aborted) return;
      pl = parsePlaylist(await this.fetch(t.uri, "text"), t.uri);
      if (pl.variants) throw new Error("the media playlist became a multivariant playlist");
    }
  }

  // append adds data to sb, first removing what is far behind the play
  // position; a full buffer is trimmed and the append retried once.
  async append(sb, data) {
    const signal = this.ctl.signal;
    const now = this.video.currentTime;
    await trimBehind(sb, now, (sb, op) => this.update(sb, op));
    try {
      await this.update(sb, () => sb.appendBuffer(data));
    } catch (e) {
      if (signal.aborted || !e || e.name !== "QuotaExceededError") throw e;
      await this.update(sb, () => sb.remove(0, Math.max(0, now - 2)));
      await this.update(sb, () => sb.appendBuffer(data));
    }
  }

  // update runs one SourceBuffer operation and waits for its updateend.
  update(sb, op) {
    return sourceBufferUpdate(sb, op, this.ctl.signal, "the browser could not decode the appended media");
  }

  // waitForRoom holds VOD downloads while FORWARD_BUFFER_S are buffered ahead.
  async waitForRoom(sb) {
    for (let i = 0; i < 100000 && !this.ctl.signal.aborted; i++) {
      const b = sb.buffered;
      if (!b.length || b.end(b.length - 1) - this.video.currentTime < FORWARD_BUFFER_S) return;
      await sleep(1000, this.ctl.signal);
    }
  }

  // followEdge starts playback once media is buffered, skips holes, and
  // keeps a live stream within a few segments of its edge.
  followEdge() {
    const v = this.video;
    const b = v.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    let t = v.currentTime;
    if (t < b.start(0) || (this.live && end - t > Math.max(3 * this.target, 6))) {
      // Start (or catch up) a little behind the newest buffered media.
      t = this.live ? Math.max(b.start(0), end - Math.max(this.target, 1)) : b.start(0);
      v.currentTime = t;
    } else {
      // Stuck in a hole between two ranges: jump to the next one.
      for (let i = 0; i < b.length; i++) {
        if (t < b.start(i) && (i === 0 || t >= b.end(i - 1) - 0.1) && b.start(i) - t < 5) {
          v.currentTime = b.start(i) + 0.01;
          break;
        }
      }
    }
    if (!this.started && v.readyState >= 2) {
      // Once: afterwards the viewer's pause button is respected.
      this.started = true;
      v.play().catch(() => {});
    }
    if (this.state === "loading" && v.readyState >= 3) this.status("playing", this.live ? "Playing live (HLS)" : "Playing the recording (HLS)");
    if (!this.live && v.ended && this.state !== "ended") this.status("ended", "End of the recording");
  }
}
