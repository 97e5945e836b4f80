// The REST API as the page uses it: JSON calls, uploads with progress, the job event stream and
// downloads. Every call sends the API key (kept in sessionStorage) as `Authorization: Bearer`,
// and every error response becomes an ApiError carrying the problem+json body.

const KEY = 'gmfuse.apiKey';

export const getKey = () => sessionStorage.getItem(KEY) || '';
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function authHeaders(extra = {}) {
  const headers = new Headers(extra);
  const key = getKey();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  return headers;
}

/** An error response of the API: `problem` is its RFC 9457 body (title, detail, code, status). */
export class ApiError extends Error {
  constructor(problem) {
    super(`${problem.title}: ${problem.detail || ''}`);
    this.problem = problem;
  }
}

/** The problem of a failed response (a synthetic one when the body is not problem+json). */
async function problemOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text);
    if (p && typeof p.title === 'string') return p;
  } catch (_) { /* not JSON */ }
  return { title: res.statusText || `HTTP ${res.status}`, status: res.status, detail: text.slice(0, 300) };
}

/** Fetch `path` with the key; throw ApiError on a non-2xx answer; return the Response. */
export async function call(method, path, { json, signal, headers } = {}) {
  const init = { method, headers: authHeaders(headers), signal };
  if (json !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError({ title: 'The server cannot be reached', detail: String(e.message || e) });
  }
  if (!res.ok) throw new ApiError(await problemOf(res));
  return res;
}

export const getJson = async (path, opts) => (await call('GET', path, opts)).json();
export const postJson = async (path, json, opts) => (await call('POST', path, { ...opts, json })).json();

/** Every item of a cursor-paged list (`items` + `next_cursor`), at most `max`. */
export async function listAll(path, max = 500) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await getJson(`${path}${sep}limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

/**
 * Upload a model file as the raw request body (XHR, for its upload progress events).
 * `onProgress(sent, total)` is called as bytes leave. Resolves with the ModelView.
 */
export function uploadModel(file, { name, architecture }, onProgress) {
  const q = new URLSearchParams();
  if (name) q.set('name', name);
  if (architecture) q.set('architecture', architecture);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/models?${q}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const key = getKey();
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new ApiError(body && body.title ? body : { title: `HTTP ${xhr.status}`, status: xhr.status, detail: xhr.responseText.slice(0, 300) }));
    });
    xhr.addEventListener('error', () => reject(new ApiError({ title: 'Upload failed', detail: 'the connection to the server was lost' })));
    xhr.addEventListener('abort', () => reject(new ApiError({ title: 'Upload canceled', detail: file.name })));
    xhr.send(file);
  });
}

/**
 * Follow `GET /v1/jobs/{id}/events` (Server-Sent Events read with fetch, because EventSource
 * cannot send the Authorization header). Calls `onEvent(type, data)` per event; resolves when
 * the server ends the stream (after the terminal status) or `signal` aborts.
 */
export async function followEvents(jobId, onEvent, signal) {
  const res = await call('GET', `/v1/jobs/${jobId}/events`, { signal, headers: { Accept: 'text/event-stream' } });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block, onEvent);
    }
  }
}

function dispatch(block, onEvent) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  let parsed;
  try { parsed = JSON.parse(data.join('\n')); } catch (_) { return; }
  onEvent(type, parsed);
}

/** The file name of a Content-Disposition header, or `fallback`. */
function filenameOf(res, fallback) {
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return m ? m[1] : fallback;
}

/** Download `path` (with the key) and hand it to the browser as a file. */
export async function download(path, fallback) {
  const res = await call('GET', path);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filenameOf(res, fallback);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return a.download;
}
