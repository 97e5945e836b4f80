// Upload page: drop safetensors files (or pick them), choose an architecture, and watch each
// upload's progress bar; the server streams, hashes and validates every file.

import { getJson, uploadModel } from './api.js';
import { h, fill, bytes, showError, pageTitle } from './dom.js';

export async function renderUpload(main) {
  const archs = await getJson('/v1/architectures');
  const input = h('input', { id: 'files', type: 'file', accept: '.safetensors', multiple: true, class: 'visually-hidden' });
  const zone = h('div', { class: 'dropzone', id: 'dropzone' },
    h('p', {}, 'Drop .safetensors files here, or'),
    h('label', { for: 'files', class: 'button' }, 'Choose files…'),
    input);
  const arch = h('select', { id: 'arch', name: 'architecture' },
    h('option', { value: '' }, 'Detect from the tensors'),
    archs.items.map((a) => h('option', { value: a.name }, a.name + (a.builtin ? ' (preset)' : ''))));
  const list = h('ol', { class: 'uploads', id: 'uploads', 'aria-live': 'polite' });

  const send = (files) => uploadAll([...files], arch.value, list);
  input.addEventListener('change', () => { send(input.files); input.value = ''; });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    send(e.dataTransfer.files);
  });

  fill(main,
    pageTitle('Upload models'),
    h('p', {}, 'Each file is a safetensors model. Its tensors are checked against the architecture ',
      'you pick (or the first one they fit), and identical files are stored once.'),
    h('div', { class: 'field' }, h('label', { for: 'arch' }, 'Architecture'), arch),
    zone,
    list,
    h('p', {}, h('a', { href: '#/catalog' }, 'See every model in the catalog'), ' · ',
      h('a', { href: '#/jobs/new' }, 'Start a job')));
}

/** Upload `files` one after the other, each with its own row and progress bar. */
async function uploadAll(files, architecture, list) {
  for (const file of files) {
    const bar = h('progress', { max: '100', value: '0', 'aria-label': `Upload of ${file.name}` });
    const state = h('span', { class: 'upload-state' }, 'waiting');
    const outcome = h('div', {});
    list.append(h('li', { class: 'upload' }, h('strong', {}, file.name), ` (${bytes(file.size)}) `, bar, ' ', state, outcome));
    const name = file.name.replace(/\.safetensors$/i, '');
    try {
      const model = await uploadModel(file, { name, architecture }, (sent, total) => {
        const f = total ? sent / total : 0;
        bar.value = Math.round(f * 100);
        state.textContent = sent >= total ? 'validating…' : `${Math.round(f * 100)} %`;
      });
      bar.value = 100;
      state.textContent = 'stored';
      fill(outcome, h('span', { class: 'ok' }, `model ${model.name}`), ' — id ',
        h('code', { class: 'model-id' }, model.id), `, architecture ${model.architecture || 'none detected'}, `,
        `${model.tensors.length} tensors`);
    } catch (err) {
      state.textContent = 'refused';
      showError(outcome, err);
    }
  }
}
