// New job page: pick the models (model 1 is aligned onto model 2; up to 8 for a merge), the
// architecture, methods, GAMF solvers, proportions, dataset and calibration set, and submit.
// The server validates everything; its problem is shown as is.

import { getJson, listAll, postJson } from './api.js';
import { h, fill, showError, pageTitle, shortId } from './dom.js';

/** The methods and solvers the engine registers (`MethodId`, `SolverId`), with their titles. */
export const METHODS = [
  ['gamf', 'GAMF (graph matching)', true],
  ['weight_matching', 'Weight matching (Git Re-Basin)', false],
  ['activation_matching', 'Activation matching (needs calibration samples)', false],
  ['auto', 'Auto (picked by the pre-flight estimate)', false],
  ['none', 'None (plain averaging; always reported as the baseline)', false],
];
export const SOLVERS = [['sm', 'Spectral matching (sm)', true], ['rrwm', 'RRWM', false], ['ipfp', 'IPFP', false]];

/** `0:1:0.1` (inclusive) or `0.2, 0.5` → numbers; throws a message on anything else. */
export function parseProportions(text) {
  const t = text.trim();
  const parts = t.split(':');
  const num = (s) => {
    const v = Number(s.trim());
    if (s.trim() === '' || !Number.isFinite(v)) throw new Error(`“${s.trim()}” is not a number`);
    return v;
  };
  if (parts.length === 3) {
    const [start, stop, step] = parts.map(num);
    if (!(step > 0) || stop < start) throw new Error('use START:STOP:STEP with START ≤ STOP and STEP > 0');
    const n = Math.floor((stop - start) / step + 1e-9);
    if (n > 100) throw new Error('at most 101 proportions');
    return Array.from({ length: n + 1 }, (_, k) => Math.round((start + k * step) * 1e9) / 1e9);
  }
  return t.split(',').map(num);
}

const checkboxes = (name, items) => items.map(([value, label, on]) => h('div', { class: 'check' },
  h('input', { type: 'checkbox', id: `${name}-${value}`, name, value, checked: on }),
  h('label', { for: `${name}-${value}` }, label)));

export async function renderNewJob(main) {
  const [models, archs, datasets] = await Promise.all([
    listAll('/v1/models'), getJson('/v1/architectures'), getJson('/v1/datasets'),
  ]);
  const modelOptions = (i) => models.map((m, k) => h('option', { value: m.id, selected: k === i },
    `${m.name} (${m.architecture || 'no architecture'}, ${shortId(m.id)})`));
  const modelRows = h('div', { id: 'model-rows' });
  const addModel = (i) => {
    const n = modelRows.children.length + 1;
    modelRows.append(h('div', { class: 'field' },
      h('label', { for: `model-${n}` }, `Model ${n}`),
      h('select', { id: `model-${n}`, name: 'model' }, modelOptions(i))));
  };
  addModel(0);
  addModel(1);
  const errors = h('div', { id: 'job-errors' });
  const datasetSelect = (id, blank) => h('select', { id, name: id },
    blank ? h('option', { value: '' }, blank) : null,
    datasets.items.map((d) => h('option', { value: d.id, selected: !blank && d.id === 'mnist-test' }, `${d.name} (${d.samples} samples)`)));

  const form = h('form', { id: 'job-form', novalidate: true },
    h('fieldset', {}, h('legend', {}, 'Models (model 1 is aligned onto model 2)'), modelRows,
      h('button', { type: 'button', id: 'add-model', onclick: () => { if (modelRows.children.length < 8) addModel(-1); } }, 'Add a model (merge 3–8)')),
    h('div', { class: 'field' }, h('label', { for: 'architecture' }, 'Architecture'),
      h('select', { id: 'architecture', name: 'architecture' }, h('option', { value: '' }, 'The one recorded for the models'),
        archs.items.map((a) => h('option', { value: a.name }, a.name)))),
    h('fieldset', {}, h('legend', {}, 'Methods'), checkboxes('method', METHODS)),
    h('fieldset', {}, h('legend', {}, 'GAMF solvers'), checkboxes('solver', SOLVERS),
      h('div', { class: 'field' }, h('label', { for: 'compat' }, 'Conventions'),
        h('select', { id: 'compat' }, h('option', { value: '' }, 'gmfuse (fixed)'), h('option', { value: 'pygmtools-example' }, 'pygmtools example (sm only)')))),
    h('div', { class: 'field' }, h('label', { for: 'proportions' }, 'Proportions α (share of the last model)'),
      h('input', { id: 'proportions', value: '0:1:0.1', 'aria-describedby': 'proportions-help' }),
      h('small', { id: 'proportions-help' }, 'START:STOP:STEP (inclusive) or a comma list; two-model jobs only')),
    h('div', { class: 'field' }, h('label', { for: 'dataset' }, 'Evaluation dataset'), datasetSelect('dataset')),
    h('div', { class: 'field' }, h('label', { for: 'calibration' }, 'Calibration samples (activation matching)'),
      datasetSelect('calibration', 'Default (mnist-train-5k)')),
    h('div', { class: 'field' }, h('label', { for: 'max-sweeps' }, 'Weight matching: sweeps at most'),
      h('input', { id: 'max-sweeps', type: 'number', min: '1', value: '100' })),
    errors,
    h('button', { type: 'submit', class: 'primary', id: 'submit-job' }, 'Start job'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    errors.replaceChildren();
    let body;
    try { body = request(form, models.length); } catch (err) { showError(errors, err); return; }
    try {
      const job = await postJson('/v1/jobs', body);
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      showError(errors, err);
      errors.querySelector('[role=alert]').focus?.();
    }
  });

  fill(main, pageTitle('New job'),
    models.length < 2 ? h('p', { class: 'problem', role: 'alert' }, 'A job needs two models: ', h('a', { href: '#/upload' }, 'upload them first.')) : null,
    form);
}

/** The NewJob body of the form. */
function request(form, modelCount) {
  const q = (s) => form.querySelector(s);
  const values = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  const models = [...form.querySelectorAll('select[name=model]')].map((s) => s.value).filter(Boolean);
  if (models.length < 2 || modelCount < 2) throw new Error('pick at least two models');
  const methods = values('method');
  if (methods.length === 0) throw new Error('pick at least one method');
  const body = { models, methods, dataset: q('#dataset').value };
  const solvers = values('solver');
  if (methods.includes('gamf') || methods.includes('auto')) {
    if (solvers.length === 0) throw new Error('pick at least one GAMF solver');
    body.solvers = solvers;
  }
  if (q('#architecture').value) body.architecture = q('#architecture').value;
  if (q('#compat').value) body.compat = q('#compat').value;
  if (q('#calibration').value) body.calibration = q('#calibration').value;
  if (models.length === 2) {
    try { body.proportions = parseProportions(q('#proportions').value); } catch (err) { throw new Error(`proportions: ${err.message}`); }
  }
  const sweeps = Number(q('#max-sweeps').value);
  if (Number.isInteger(sweeps) && sweeps !== 100) body.weight_matching = { max_sweeps: sweeps };
  return body;
}
