// A succeeded job's report: inputs and best model, accuracy curves (inputs dashed) with their
// numbers, the matching matrix and per-group permutation summaries of each aligning method,
// stage timings, and downloads (report, plots, fused weights at every proportion).

import { download } from './api.js';
import { h, fill, pct, alpha, secs, showError } from './dom.js';
import { accuracyChart, matchingChart, swatch, CURVE_COLORS, NONE_COLOR, INPUT_COLORS } from './charts.js';
import { table } from './catalog.js';

const TITLES = {
  gamf: 'Graph Matching Fusion', weight_matching: 'Weight Matching Fusion',
  activation_matching: 'Activation Matching Fusion', none: 'No Matching Fusion', auto: 'Auto',
};

/** A curve's title and key: GAMF curves carry their solver. */
export const curveKey = (c) => (c.solver ? `${c.method}:${c.solver}` : c.method);
/** The server's titles (`MethodId::title`, `SolverId::gamf_title`): GAMF names its solver unless SM. */
const title = (x) => (x.method === 'gamf' && x.solver && x.solver !== 'sm'
  ? `Graph Matching Fusion (${x.solver.toUpperCase()})` : TITLES[x.method] || x.method);
const curveTitle = title;
const matchingTitle = title;

export function renderReport(el, r) {
  fill(el,
    h('h2', { id: 'report-h' }, 'Report'),
    summary(r),
    r.curves.length ? curves(r) : merged(r),
    matchings(r),
    h('section', { 'aria-labelledby': 'timings-h' }, h('h3', { id: 'timings-h' }, 'Timings'),
      table(['Stage', 'Seconds'], [...r.timings.map((t) => [t.stage, secs(t.seconds)]),
        [h('strong', {}, 'total'), h('strong', {}, secs(r.timings.reduce((a, t) => a + t.seconds, 0)))]], 'timings-table')),
    downloads(r));
}

function summary(r) {
  const best = r.best;
  return h('section', { 'aria-labelledby': 'summary-h' },
    h('h3', { id: 'summary-h' }, 'Inputs and best model'),
    h('p', {}, `${r.architecture} on ${r.dataset}, ${r.samples.toLocaleString('en')} samples; methods ${r.methods.join(', ')}${r.compat ? `, compat ${r.compat}` : ''}.`),
    table(['Input', 'Model', 'Accuracy (%)', 'Loss'], r.inputs.map((m, i) => [`model ${i + 1}`, h('code', { title: m.sha256 }, m.model_id),
      h('span', { dataset: { input: String(i) } }, pct(m.accuracy)), m.loss.toFixed(4)]), 'inputs-table'),
    h('p', { id: 'best', class: 'best' }, 'Best: ', h('strong', {}, TITLES[best.method] || best.method),
      best.proportion !== undefined && best.proportion !== null ? ` at α = ${alpha(best.proportion)}` : ' (weighted average)',
      ': ', h('strong', { dataset: { best: '' } }, pct(best.accuracy)), ' %'));
}

function curves(r) {
  let k = 0;
  const series = r.curves.map((c) => ({
    key: curveKey(c), label: curveTitle(c), points: c.points,
    color: c.method === 'none' ? NONE_COLOR : CURVE_COLORS[(k++) % CURVE_COLORS.length],
  }));
  const levels = r.inputs.map((m, i) => ({ label: `Model ${i + 1}`, color: INPUT_COLORS[i], accuracy: m.accuracy }));
  const legend = h('ul', { class: 'legend' },
    series.map((c) => h('li', {}, swatch(c.color, false), ' ', c.label)),
    levels.map((l) => h('li', {}, swatch(l.color, true), ` ${l.label} (${pct(l.accuracy)} %)`)));
  const head = ['α', ...series.map((c) => c.label)];
  const rows = r.proportions.map((p, i) => [alpha(p), ...series.map((c) => {
    const pt = c.points[i];
    return h('span', { dataset: { curve: c.key, proportion: String(p) } }, pt ? pct(pt.accuracy) : '–');
  })]);
  return h('section', { 'aria-labelledby': 'curves-h' },
    h('h3', { id: 'curves-h' }, 'Accuracy against proportion'),
    h('figure', { id: 'curves' }, accuracyChart(series, levels, `Fused model accuracy on ${r.dataset}`), h('figcaption', {}, legend)),
    h('h4', {}, 'Accuracy (%) per proportion'),
    table(head, rows, 'curves-table'));
}

function merged(r) {
  return h('section', { 'aria-labelledby': 'merged-h' },
    h('h3', { id: 'merged-h' }, `Weighted average of ${r.inputs.length} models`),
    table(['Method', 'Accuracy (%)', 'Loss'], r.merged.map((m) => [TITLES[m.method] || m.method,
      h('span', { dataset: { merged: m.method } }, pct(m.accuracy)), m.loss.toFixed(4)]), 'merged-table'));
}

/** Per hidden group: channels, channels left in place, channels moved, cycles of the permutation. */
export function permutationSummary(perm) {
  const seen = new Array(perm.length).fill(false);
  let fixed = 0; let cycles = 0;
  perm.forEach((j, i) => { if (j === i) fixed += 1; });
  for (let i = 0; i < perm.length; i += 1) {
    if (seen[i]) continue;
    cycles += 1;
    for (let j = i; j < perm.length && !seen[j]; j = perm[j]) seen[j] = true;
  }
  return { channels: perm.length, fixed, moved: perm.length - fixed, cycles };
}

function matchings(r) {
  if (!r.matchings.length) return h('p', {}, 'No aligning method ran: there is no matching.');
  const pick = h('select', { id: 'matching-pick' }, r.matchings.map((m, i) => h('option', { value: String(i) }, matchingTitle(m))));
  const body = h('div', { id: 'matching' });
  const show = () => {
    const m = r.matchings[Number(pick.value)];
    const perms = m.permutations.length ? m.permutations : (m.models[0] || { permutations: [] }).permutations;
    fill(body,
      h('p', {}, `Objective ${m.objective.toPrecision(6)} after ${m.iterations} iterations, ${secs(m.seconds)} s`,
        m.max_abs_logit_delta !== undefined ? `; equivalence check max |Δlogit| ${m.max_abs_logit_delta.toExponential(1)}` : '',
        m.picked_by_auto ? `; picked by auto: ${m.picked_by_auto}` : '', '.'),
      h('figure', {}, matchingChart({ ...m, permutations: perms }, `Matching matrix: ${matchingTitle(m)}`)),
      h('h4', {}, 'Permutation per group'),
      table(['Layer', 'Channels', 'Left in place', 'Moved', 'Cycles'], perms.map((p) => {
        const sm = permutationSummary(p.perm);
        return [h('code', {}, p.layer), sm.channels, sm.fixed, sm.moved, sm.cycles];
      }), 'groups-table'));
  };
  pick.addEventListener('change', show);
  const section = h('section', { 'aria-labelledby': 'matching-h' },
    h('h3', { id: 'matching-h' }, 'Matching'),
    r.matchings.length > 1 ? h('div', { class: 'field' }, h('label', { for: 'matching-pick' }, 'Method'), pick) : null,
    body);
  show();
  return section;
}

function downloads(r) {
  const status = h('div', { id: 'download-status', 'aria-live': 'polite' });
  const get = (path, name) => h('button', {
    type: 'button', class: 'link',
    onclick: async () => {
      try { fill(status, `saved ${await download(path, name)}`); } catch (err) { showError(status, err); }
    },
  }, name);
  const base = `/v1/jobs/${r.job_id}`;
  const methods = r.methods.filter((m) => m !== 'auto');
  const fused = r.proportions.length
    ? table(['Method', ...r.proportions.map((p) => `α ${alpha(p)}`)], methods.map((m) => [TITLES[m] || m,
      ...r.proportions.map((p) => h('button', {
        type: 'button', class: 'link', dataset: { fused: `${m}@${p}` }, 'aria-label': `Fused weights, ${m}, α ${alpha(p)}`,
        onclick: async () => {
          try { fill(status, `saved ${await download(`${base}/fused?proportion=${p}&method=${m}`, `fused-${m}-${p}.safetensors`)}`); } catch (err) { showError(status, err); }
        },
      }, alpha(p)))]), 'fused-table')
    : h('ul', {}, methods.map((m) => h('li', {}, get(`${base}/fused?method=${m}`, `fused-${m}-average.safetensors`))));
  return h('section', { 'aria-labelledby': 'downloads-h' },
    h('h3', { id: 'downloads-h' }, 'Downloads'),
    h('ul', { class: 'inline' },
      h('li', {}, get(`${base}/report`, `report-${r.job_id}.json`)),
      h('li', {}, get(`${base}/report.svg`, `report-${r.job_id}.svg`)),
      [...new Set(r.matchings.map((m) => m.method))].map((m) => h('li', {}, get(`${base}/matching.svg?method=${m}`, `matching-${m}-${r.job_id}.svg`)))),
    h('h4', {}, 'Fused weights (safetensors)'),
    fused,
    status);
}
