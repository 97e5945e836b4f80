// Small DOM helpers shared by the pages: element building, number formatting, problem display.

/** Build an element: h('a', {href: '#/x', class: 'c'}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An accuracy in percent with two decimals, as the report tables print it. */
export const pct = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
/** A proportion α with two decimals. */
export const alpha = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
/** Seconds, three decimals. */
export const secs = (v) => (Number.isFinite(v) ? v.toFixed(3) : '–');

/** Bytes as KiB/MiB/GiB. */
export function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** A timestamp in the reader's locale. */
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

/** A status badge. */
export const badge = (status) => h('span', { class: `badge status-${status}` }, status);

/**
 * Show an API error (a problem+json body) or any other error in `el`: the problem's title,
 * its detail and its code.
 */
export function showError(el, err) {
  const p = err && err.problem ? err.problem : { title: 'Error', detail: String(err && err.message ? err.message : err) };
  const box = h('div', { class: 'problem', role: 'alert' },
    h('strong', { class: 'problem-title' }, p.title || 'Error'),
    p.status ? h('span', { class: 'muted' }, ` (${p.status}${p.code ? `, ${p.code}` : ''})`) : null,
    p.detail ? h('p', { class: 'problem-detail' }, p.detail) : null);
  fill(el, box);
  return box;
}

/** A heading that takes focus when a page is shown (for keyboard and screen reader users). */
export const pageTitle = (text) => h('h1', { tabindex: '-1', class: 'page-title' }, text);

/** The last 8 hex digits of an id: ids are UUIDv7, whose first digits are a timestamp. */
export const shortId = (id) => id.slice(-8);
