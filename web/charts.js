// SVG figures drawn in the browser from the report JSON: accuracy against proportion (inputs as
// dashed lines) and the block matching matrix of one method. Colours are presentation
// attributes, not styles, so the page's CSP needs nothing more.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export const CURVE_COLORS = ['#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];
export const NONE_COLOR = '#1f77b4';
export const INPUT_COLORS = ['#7f7f7f', '#111111', '#bcbd22', '#e377c2', '#7f7f7f', '#111111', '#bcbd22', '#e377c2'];

/** Round "nice" tick values covering [lo, hi]. */
function ticks(lo, hi, count) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v * 1e9) / 1e9);
  return out;
}

/**
 * Accuracy (%) against proportion α: one solid line with markers per `series` entry
 * ({label, color, points: [{proportion, accuracy}]}) and one dashed line per `levels` entry
 * ({label, color, accuracy}).
 */
export function accuracyChart(series, levels, title) {
  const W = 720; const H = 400; const L = 64; const R = 16; const T = 40; const B = 52;
  const xs = series.flatMap((c) => c.points.map((p) => p.proportion));
  const ys = [...series.flatMap((c) => c.points.map((p) => p.accuracy)), ...levels.map((l) => l.accuracy)].filter(Number.isFinite);
  const x0 = xs.length ? Math.min(...xs) : 0; const x1 = xs.length ? Math.max(...xs) : 1;
  const xpad = (x1 - x0 || 1) * 0.04;
  let y0 = ys.length ? Math.min(...ys) : 0; let y1 = ys.length ? Math.max(...ys) : 100;
  const ypad = Math.max((y1 - y0) * 0.08, 0.5);
  y0 = Math.max(0, y0 - ypad); y1 = Math.min(100, y1 + ypad);
  const X = (v) => L + ((v - (x0 - xpad)) / ((x1 + xpad) - (x0 - xpad))) * (W - L - R);
  const Y = (v) => T + (1 - (v - y0) / (y1 - y0 || 1)) * (H - T - B);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'acc-title' });
  svg.append(s('title', { id: 'acc-title' }, title));
  svg.append(s('text', { x: W / 2, y: 24, 'text-anchor': 'middle', class: 'chart-title' }, title));
  for (const v of ticks(y0, y1, 6)) {
    svg.append(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: '#e3e3e3' }));
    svg.append(s('text', { x: L - 8, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick' }, String(v)));
  }
  for (const v of ticks(x0, x1, 10)) {
    svg.append(s('line', { x1: X(v), x2: X(v), y1: H - B, y2: H - B + 5, stroke: '#555' }));
    svg.append(s('text', { x: X(v), y: H - B + 19, 'text-anchor': 'middle', class: 'tick' }, v.toFixed(1)));
  }
  svg.append(s('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'none', stroke: '#555' }));
  svg.append(s('text', { x: (L + W - R) / 2, y: H - 10, 'text-anchor': 'middle', class: 'axis' }, 'proportion α (share of the last model)'));
  svg.append(s('text', { x: 16, y: (T + H - B) / 2, 'text-anchor': 'middle', class: 'axis', transform: `rotate(-90 16 ${(T + H - B) / 2})` }, 'accuracy (%)'));
  for (const l of levels) {
    svg.append(s('line', { x1: L, x2: W - R, y1: Y(l.accuracy), y2: Y(l.accuracy), stroke: l.color, 'stroke-width': 2, 'stroke-dasharray': '7 5', class: 'level' },
      s('title', {}, `${l.label}: ${l.accuracy.toFixed(2)} %`)));
  }
  for (const c of series) {
    const pts = c.points.filter((p) => Number.isFinite(p.accuracy));
    svg.append(s('polyline', { points: pts.map((p) => `${X(p.proportion)},${Y(p.accuracy)}`).join(' '), fill: 'none', stroke: c.color, 'stroke-width': 2.5, class: 'curve' }));
    for (const p of pts) {
      svg.append(s('circle', { cx: X(p.proportion), cy: Y(p.accuracy), r: 4, fill: c.color },
        s('title', {}, `${c.label}, α = ${p.proportion.toFixed(2)}: ${p.accuracy.toFixed(2)} %`)));
    }
  }
  return svg;
}

/** A legend swatch: a short solid or dashed line. */
export function swatch(color, dashed) {
  return s('svg', { width: 28, height: 10, 'aria-hidden': 'true', class: 'swatch' },
    s('line', { x1: 1, x2: 27, y1: 5, y2: 5, stroke: color, 'stroke-width': 3, 'stroke-dasharray': dashed ? '6 4' : null }));
}

/**
 * The matching matrix of one matching: rows are model 1's nodes, columns model 2's, in group
 * order (input, each hidden layer, output); cell (i, perm[i]) of each hidden block is filled,
 * the input and output blocks are the identity. Blocks are labelled with their layers.
 */
export function matchingChart(matching, title) {
  const sizes = matching.group_sizes || [];
  const n = sizes.reduce((a, b) => a + b, 0);
  const names = sizes.map((_, g) => (g === 0 ? 'input' : g === sizes.length - 1 ? 'output'
    : (matching.permutations[g - 1] ? matching.permutations[g - 1].layer.replace(/\.weight$/, '') : `group ${g}`)));
  const side = 480; const L = 110; const T = 44; const B = 40;
  const svg = s('svg', { viewBox: `0 0 ${L + side + 16} ${T + side + B}`, class: 'chart matrix', role: 'img', 'aria-labelledby': 'mat-title' });
  svg.append(s('title', { id: 'mat-title' }, title));
  svg.append(s('text', { x: L + side / 2, y: 24, 'text-anchor': 'middle', class: 'chart-title' }, title));
  svg.append(s('rect', { x: L, y: T, width: side, height: side, fill: '#fff', stroke: '#333' }));
  if (n === 0 || n > 20000) {
    svg.append(s('text', { x: L + side / 2, y: T + side / 2, 'text-anchor': 'middle' }, n ? 'matrix too large to draw' : 'no matching'));
    return svg;
  }
  const cell = side / n;
  const size = Math.max(cell, 1);
  let offset = 0;
  sizes.forEach((count, g) => {
    const hidden = g > 0 && g < sizes.length - 1;
    const perm = hidden ? (matching.permutations[g - 1] || { perm: [] }).perm : null;
    for (let i = 0; i < count; i += 1) {
      const j = hidden ? perm[i] : i;
      if (j === undefined || j >= count) continue;
      svg.append(s('rect', { x: L + (offset + j) * cell, y: T + (offset + i) * cell, width: size, height: size, fill: '#08306b' }));
    }
    if (offset > 0) {
      svg.append(s('line', { x1: L + offset * cell, x2: L + offset * cell, y1: T, y2: T + side, stroke: '#999' }));
      svg.append(s('line', { x1: L, x2: L + side, y1: T + offset * cell, y2: T + offset * cell, stroke: '#999' }));
    }
    const mid = (offset + count / 2) * cell;
    if (count * cell >= 10) {
      svg.append(s('text', { x: L - 6, y: T + mid + 4, 'text-anchor': 'end', class: 'tick' }, `${names[g]} (${count})`));
    }
    offset += count;
  });
  svg.append(s('text', { x: L + side / 2, y: T + side + 26, 'text-anchor': 'middle', class: 'axis' }, 'model 2 channel (columns) · model 1 channel (rows)'));
  return svg;
}
