// The console's access to the HTTP API (/api/v1): a bearer key kept in
// sessionStorage, sent with every call; a 401 answer asks for a key.

const KEY = "quasipaa.apiKey";
const TIMEOUT_MS = 10000;

/** APIError is an error answer of the API: {"error": {"code", "message"}}. */
export class APIError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
  }
}

let askKey = null; // set by onUnauthorized: shows the sign-in dialog

/** onUnauthorized sets what to do when the API answers 401. */
export function onUnauthorized(fn) {
  askKey = fn;
}

/** key returns the stored API key, or "". */
export function key() {
  return sessionStorage.getItem(KEY) || "";
}

/** setKey stores (or with "" forgets) the API key. */
export function setKey(k) {
  if (k) sessionStorage.setItem(KEY, k);
  else sessionStorage.removeItem(KEY);
}

/**
 * api calls the API at path ("/streams"…) and returns the decoded JSON
 * (null for an empty answer); an error answer throws an APIError. A 401
 * first calls the unauthorized handler.
 */
export async function api(path, init = {}) {
  const headers = Object.assign({ Accept: "application/json" }, init.headers || {});
  const k = key();
  if (k) headers.Authorization = "Bearer " + k;
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let r;
  try {
    r = await fetch("/api/v1" + path, Object.assign({}, init, { headers, signal: ctl.signal, cache: "no-store" }));
  } catch (e) {
    throw new APIError(0, "network", e && e.name === "AbortError" ? "the server did not answer in time" : "the server cannot be reached");
  } finally {
    clearTimeout(t);
  }
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    body = null;
  }
  if (!r.ok) {
    const e = body && body.error ? body.error : {};
    const err = new APIError(r.status, e.code, e.message || (text && !body ? text.trim().slice(0, 200) : ""));
    if (r.status === 401 && askKey) askKey(err);
    throw err;
  }
  return body;
}
