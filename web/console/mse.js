// Pieces shared by the console's two Media Source Extensions players,
// hls.js and flv.js.

/** BACK_BUFFER_S is how much media, in seconds, is kept behind the play position. */
export const BACK_BUFFER_S = 20;

/** HTTPError is a request answered with an error status. */
export class HTTPError extends Error {
  constructor(url, status) {
    super(`GET ${new URL(url).pathname}: HTTP ${status}`);
    this.status = status;
  }
}

/**
 * attachMediaSource plays a new MediaSource in video. It returns
 * {ms, objectURL, open}: open resolves once the MediaSource is open and
 * rejects if it is not within 10 s.
 */
export function attachMediaSource(video) {
  const ms = new MediaSource();
  const objectURL = URL.createObjectURL(ms);
  video.src = objectURL;
  const open = new Promise((resolve, reject) => {
    ms.addEventListener("sourceopen", resolve, { once: true });
    setTimeout(() => reject(new Error("MediaSource did not open")), 10000);
  });
  return { ms, objectURL, open };
}

/**
 * sourceBufferUpdate runs one SourceBuffer operation (an append or a
 * remove) and resolves at its updateend; a decoding error rejects with
 * failure. Once signal is aborted it resolves without running op.
 */
export function sourceBufferUpdate(sb, op, signal, failure) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve();
    const done = (e) => {
      sb.removeEventListener("updateend", done);
      sb.removeEventListener("error", done);
      if (e && e.type === "error") reject(new Error(failure));
      else resolve();
    };
    sb.addEventListener("updateend", done);
    sb.addEventListener("error", done);
    try {
      op();
    } catch (e) {
      sb.removeEventListener("updateend", done);
      sb.removeEventListener("error", done);
      reject(e);
    }
  });
}

/**
 * trimBehind removes the media of sb more than BACK_BUFFER_S behind the
 * play position now, once there is 10 s more than that, through update
 * (a player's sourceBufferUpdate).
 */
export async function trimBehind(sb, now, update) {
  if (sb.buffered.length && now - sb.buffered.start(0) > BACK_BUFFER_S + 10) {
    await update(sb, () => sb.remove(0, now - BACK_BUFFER_S));
  }
}
