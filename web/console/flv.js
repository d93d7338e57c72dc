// A minimal HTTP-FLV player: the FLV stream is read with fetch, its H.264
// and AAC tags are remuxed to fragmented MP4 here, and played with Media
// Source Extensions (one SourceBuffer per track).
//
// Limits (see docs/console.md): H.264 video (FLV codec id 7) and AAC audio
// only; no Enhanced-RTMP codecs (H.265, AV1, VP9, Opus in FLV); another
// audio format is left out and the video plays alone. Playback is kept
// within about a second of the newest media received.

import { HTTPError, attachMediaSource, sourceBufferUpdate, trimBehind } from "./mse.js";

const TIMESCALE = 1000; // FLV timestamps are milliseconds
const FLUSH_MS = 100; // remux and append what arrived, this often
const MAX_TAG = 8 << 20; // a bigger FLV tag is an error

// ---- FLV demuxer ----

/**
 * FLVDemuxer parses an FLV byte stream given in chunks of any size. It
 * calls onConfig(kind, bytes) for a sequence header (kind "video": the
 * AVCDecoderConfigurationRecord; "audio": the AudioSpecificConfig) and
 * onSample(kind, {dts, cts, key, data}) for each frame. Bad input throws
 * an Error that says what is wrong.
 */
export class FLVDemuxer {
  constructor(onConfig, onSample) {
    this.onConfig = onConfig;
    this.onSample = onSample;
    this.buf = new Uint8Array(0);
    this.header = false;
    this.skipped = new Set(); // formats reported as unsupported once
  }

  push(chunk) {
    const rest = this.buf;
    const buf = new Uint8Array(rest.length + chunk.length);
    buf.set(rest);
    buf.set(chunk, rest.length);
    let p = 0;
    if (!this.header) {
      if (buf.length < 13) {
        this.buf = buf;
        return;
      }
      if (buf[0] !== 0x46 || buf[1] !== 0x4c || buf[2] !== 0x56) throw new Error("not an FLV stream (no FLV signature)");
      const offset = (buf[5] << 24) | (buf[6] << 16) | (buf[7] << 8) | buf[8];
      if (offset < 9 || offset > 1024) throw new Error(`invalid FLV header size ${offset}`);
      if (buf.length < offset + 4) {
        this.buf = buf;
        return;
      }
      p = offset + 4; // the header, then PreviousTagSize0
      this.header = true;
    }
    for (;;) {
      if (buf.length - p < 11) break;
      const type = buf[p] & 0x1f;
      const size = (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
      if (size > MAX_TAG) throw new Error(`FLV tag of ${size} bytes: too big`);
      if (buf.length - p < 11 + size + 4) break;
      const ts = ((buf[p + 7] << 24) | (buf[p + 4] << 16) | (buf[p + 5] << 8) | buf[p + 6]) >>> 0;
      const body = buf.subarray(p + 11, p + 11 + size);
      if (buf[p] & 0x20) throw new Error("encrypted FLV tags are not supported");
      if (type === 9) this.video(body, ts);
      else if (type === 8) this.audio(body, ts);
      p += 11 + size + 4;
    }
    this.buf = buf.slice(p);
  }

  video(b, ts) {
    if (b.length < 5) return;
    if (b[0] & 0x80) return this.skip("Enhanced-RTMP video (H.265, AV1, VP9)");
    const frameType = b[0] >> 4;
    const codec = b[0] & 0x0f;
    if (codec !== 7) return this.skip(`FLV video codec ${codec} (only H.264)`);
    if (frameType === 5) return; // video info / command frame
    const cts = ((b[2] << 16) | (b[3] << 8) | b[4]) << 8 >> 8; // signed 24-bit
    if (b[1] === 0) this.onConfig("video", b.slice(5));
    else if (b[1] === 1 && b.length > 5) this.onSample("video", { dts: ts, cts, key: frameType === 1, data: b.slice(5) });
  }

  audio(b, ts) {
    if (b.length < 2) return;
    const format = b[0] >> 4;
    if (format !== 10) return this.skip(`FLV audio format ${format} (only AAC)`);
    if (b[1] === 0) this.onConfig("audio", b.slice(2));
    else if (b.length > 2) this.onSample("audio", { dts: ts, cts: 0, key: true, data: b.slice(2) });
  }

  skip(what) {
    if (this.skipped.has(what)) return;
    this.skipped.add(what);
    console.warn("flv: not supported, left out:", what);
  }
}

// ---- fragmented MP4 writer ----

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const u8 = (...b) => new Uint8Array(b);
const u16 = (n) => u8((n >> 8) & 255, n & 255);
const u32 = (n) => u8((n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255);
const u64 = (n) => concat([u32(Math.floor(n / 2 ** 32)), u32(n % 2 ** 32)]);
const zeros = (n) => new Uint8Array(n);
const ascii = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function box(type, ...payload) {
  const body = concat(payload);
  return concat([u32(body.length + 8), ascii(type), body]);
}

const full = (type, version, flags, ...payload) => box(type, u8(version, (flags >> 16) & 255, (flags >> 8) & 255, flags & 255), ...payload);
const MATRIX = concat([u32(0x10000), u32(0), u32(0), u32(0), u32(0x10000), u32(0), u32(0), u32(0), u32(0x40000000)]);

/** aacInfo reads an AudioSpecificConfig: object type, sample rate, channels. */
export function aacInfo(asc) {
  if (asc.length < 2) throw new Error("AAC AudioSpecificConfig too short");
  const RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
  let aot = asc[0] >> 3;
  let bit = 5;
  const read = (n) => {
    let v = 0;
    for (let i = 0; i < n; i++, bit++) v = (v << 1) | (((asc[bit >> 3] || 0) >> (7 - (bit & 7))) & 1);
    return v;
  };
  if (aot === 31) aot = 32 + read(6);
  const idx = read(4);
  const rate = idx === 15 ? read(24) : RATES[idx];
  const channels = read(4);
  if (!rate) throw new Error(`AAC sample rate index ${idx} is invalid`);
  return { aot, rate, channels: channels || 2 };
}

/**
 * initSegment returns an fMP4 init segment (ftyp + moov) of one track:
 * kind "video" with the AVCDecoderConfigurationRecord config, or "audio"
 * with the AAC AudioSpecificConfig config.
 */
export function initSegment(kind, config, trackId, width, height) {
  const video = kind === "video";
  let entry;
  if (video) {
    if (config.length < 7 || config[0] !== 1) throw new Error("invalid AVCDecoderConfigurationRecord");
    entry = box("avc1", zeros(6), u16(1), zeros(16), u16(width), u16(height), u32(0x480000), u32(0x480000), u32(0), u16(1), zeros(32), u16(0x18), u16(0xffff),
      box("avcC", config));
  } else {
    const a = aacInfo(config);
    if (config.length > 64) throw new Error("AAC AudioSpecificConfig too long");
    const dsi = concat([u8(5, config.length), config]);
    const dcd = concat([u8(4, 13 + dsi.length, 0x40, 0x15), zeros(3), u32(0), u32(0), dsi]);
    const es = concat([u8(3, 3 + dcd.length + 3), u16(trackId), u8(0), dcd, u8(6, 1, 2)]);
    entry = box("mp4a", zeros(6), u16(1), zeros(8), u16(a.channels), u16(16), zeros(4), u32(a.rate << 16 >>> 0), full("esds", 0, 0, es));
  }
  const header = video ? full("vmhd", 0, 1, zeros(8)) : full("smhd", 0, 0, zeros(4));
  const stbl = box("stbl",
    full("stsd", 0, 0, u32(1), entry),
    full("stts", 0, 0, u32(0)), full("stsc", 0, 0, u32(0)), full("stsz", 0, 0, u32(0), u32(0)), full("stco", 0, 0, u32(0)));
  const minf = box("minf", header, box("dinf", full("dref", 0, 0, u32(1), full("url ", 0, 1))), stbl);
  const mdia = box("mdia",
    full("mdhd", 0, 0, u32(0), u32(0), u32(TIMESCALE), u32(0), u16(0x55c4), u16(0)),
    full("hdlr", 0, 0, u32(0), ascii(video ? "vide" : "soun"), zeros(12), ascii(video ? "Video\0" : "Sound\0")),
    minf);
  const tkhd = full("tkhd", 0, 3, u32(0), u32(0), u32(trackId), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(video ? 0 : 0x100), u16(0), MATRIX,
    u32((video ? width : 0) << 16 >>> 0), u32((video ? height : 0) << 16 >>> 0));
  const mvhd = full("mvhd", 0, 0, u32(0), u32(0), u32(TIMESCALE), u32(0), u32(0x10000), u16(0x100), zeros(10), MATRIX, zeros(24), u32(0xffffffff));
  const mvex = box("mvex", full("trex", 0, 0, u32(trackId), u32(1), u32(0), u32(0), u32(0)));
  return concat([box("ftyp", ascii("isom"), u32(0x200), ascii("isomiso6avc1mp41")), box("moov", mvhd, box("trak", tkhd, mdia), mvex)]);
}

/**
 * mediaSegment returns moof + mdat for samples [{dts, cts, key, data,
 * duration}] of one track, in decode order.
 */
export function mediaSegment(seq, trackId, samples) {
  const build = (offset) => {
    const entries = samples.map((s) => concat([u32(s.duration), u32(s.data.length), u32(s.key ? 0x02000000 : 0x01010000), u32(s.cts >>> 0)]));
    const trun = full("trun", 1, 0x000f01, u32(samples.length), u32(offset), ...entries);
    const traf = box("traf", full("tfhd", 0, 0x020000, u32(trackId)), full("tfdt", 1, 0, u64(samples[0].dts)), trun);
    return box("moof", full("mfhd", 0, 0, u32(seq)), traf);
  };
  const size = build(0).length;
  const mdat = box("mdat", ...samples.map((s) => s.data));
  return concat([build(size + 8), mdat]);
}

// ---- the player ----

/**
 * FLVPlayer plays an HTTP-FLV URL into a <video> element, with the same
 * interface as HLSPlayer: start(), stop(), state, error, and
 * onStatus(state, message).
 */
export class FLVPlayer {
  constructor(video, url, onStatus, size) {
    this.video = video;
    this.url = new URL(url, location.href).href;
    this.onStatus = onStatus || (() => {});
    this.size = size || { width: 1280, height: 720 };
    this.ctl = new AbortController();
    this.state = "stopped";
    this.error = null;
    this.tracks = {}; // by kind: {config, pending: [], sb, id, chain, seq}
    this.started = false;
  }

  status(state, message) {
    this.state = state;
    if (state === "error") this.error = message;
    this.onStatus(state, message);
  }

  start() {
    this.status("loading", "Connecting…");
    this.run().catch((e) => {
      if (this.ctl.signal.aborted) return;
      console.warn("flv:", e);
      this.status("error", e && e.message ? e.message : String(e));
      this.ctl.abort();
    });
  }

  stop() {
    this.ctl.abort();
    clearInterval(this.timer);
    clearInterval(this.edgeTimer);
    this.video.removeAttribute("src");
    this.video.load();
    if (this.objectURL) URL.revokeObjectURL(this.objectURL);
    this.objectURL = null;
    this.status("stopped", "Stopped");
  }

  async run() {
    if (typeof MediaSource !== "function") throw new Error("this browser has no Media Source Extensions");
    const signal = this.ctl.signal;
    const { ms, objectURL, open } = attachMediaSource(this.video);
    this.ms = ms;
    this.objectURL = objectURL;
    await open;
    if (signal.aborted) return;
    const r = await fetch(this.url, { signal, cache: "no-store" });
    if (!r.ok) throw new HTTPError(this.url, r.status);
    const demux = new FLVDemuxer(
      (kind, config) => this.config(kind, config),
      (kind, sample) => this.sample(kind, sample));
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.edgeTimer = setInterval(() => this.followEdge(), 250);
    const reader = r.body.getReader();
    this.status("loading", "Buffering…");
    for (;;) {
      const { done, value } = await reader.read();
      if (done || signal.aborted) break;
      demux.push(value);
      if (this.failed) throw this.failed;
    }
    if (signal.aborted) return;
    clearInterval(this.timer);
    this.flush(true);
    await Promise.all(Object.values(this.tracks).map((t) => t.chain));
    if (signal.aborted) return;
    if (this.ms.readyState === "open") this.ms.endOfStream();
    this.status("ended", "The stream ended");
  }

  config(kind, config) {
    const t = this.tracks[kind];
    if (t && t.sb) {
      // New parameters mid-stream: a new init segment for the same track.
      if (!sameBytes(t.config, config)) {
        t.config = config;
        t.reinit = true;
      }
      return;
    }
    this.tracks[kind] = { config, pending: [], sb: null, id: kind === "video" ? 1 : 2, chain: Promise.resolve(), seq: 1 };
  }

  sample(kind, s) {
    const t = this.tracks[kind];
    if (!t) return; // no sequence header yet
    if (!t.sb) {
      // SourceBuffers are made at the first frame, for the tracks whose
      // sequence headers came before it (every SourceBuffer must exist
      // before the first append).
      if (kind === "video" && !s.key) return;
      this.createBuffers();
    }
    if (!t.sb) return;
    t.pending.push(s);
  }

  createBuffers() {
    if (this.buffersMade) return;
    this.buffersMade = true;
    const codecs = [];
    for (const [kind, t] of Object.entries(this.tracks)) {
      const codec = kind === "video"
        ? "avc1." + [1, 2, 3].map((i) => t.config[i].toString(16).padStart(2, "0")).join("")
        : "mp4a.40." + aacInfo(t.config).aot;
      const mime = `${kind}/mp4; codecs="${codec}"`;
      if (!MediaSource.isTypeSupported(mime)) {
        this.failed = new Error(`this browser cannot play ${mime}`);
        return;
      }
      t.sb = this.ms.addSourceBuffer(mime);
      t.reinit = true;
      codecs.push(mime);
    }
    this.codecs = codecs;
  }

  // flush remuxes the pending samples of each track (all but the last one,
  // whose duration is not known yet, unless final) and appends them.
  flush(final) {
    for (const t of Object.values(this.tracks)) {
      if (!t.sb || t.pending.length < (final ? 1 : 2)) continue;
      const samples = t.pending.splice(0, final ? t.pending.length : t.pending.length - 1);
      const next = t.pending.length ? t.pending[0].dts : null;
      for (let i = 0; i < samples.length; i++) {
        const after = i + 1 < samples.length ? samples[i + 1].dts : next;
        samples[i].duration = after !== null && after > samples[i].dts ? after - samples[i].dts : t.id === 1 ? 33 : 21;
      }
      const parts = [];
      if (t.reinit) {
        parts.push(initSegment(t.id === 1 ? "video" : "audio", t.config, t.id, this.size.width, this.size.height));
        t.reinit = false;
      }
      parts.push(mediaSegment(t.seq++, t.id, samples));
      for (const data of parts) this.enqueue(t, data);
    }
  }

  // enqueue appends data to the track's SourceBuffer after what was queued
  // before it, first trimming the media far behind the play position.
  enqueue(t, data) {
    t.chain = t.chain.then(async () => {
      const sb = t.sb;
      await trimBehind(sb, this.video.currentTime, (sb, op) => this.update(sb, op));
      await this.update(sb, () => sb.appendBuffer(data));
    }).catch((e) => {
      if (this.ctl.signal.aborted) return;
      this.failed = e;
      this.status("error", e.message || String(e));
      this.ctl.abort();
    });
  }

  // update runs one SourceBuffer operation and waits for its updateend.
  update(sb, op) {
    return sourceBufferUpdate(sb, op, this.ctl.signal, "the browser could not decode the remuxed media");
  }

  // followEdge starts playback once, and keeps it within about a second of
  // the newest media.
  followEdge() {
    const v = this.video;
    const b = v.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    if (this.state !== "ended" && (v.currentTime < b.start(0) || end - v.currentTime > 3)) v.currentTime = Math.max(b.start(0), end - 0.5);
    if (!this.started && v.readyState >= 2) {
      this.started = true;
      v.play().catch(() => {});
    }
    if (this.state === "loading" && v.readyState >= 3) this.status("playing", "Playing live (HTTP-FLV, remuxed in the browser)");
  }
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
