// Catalog page: the models, architectures and datasets this tenant can use.

import { getJson, listAll } from './api.js';
import { h, fill, bytes, when, pageTitle } from './dom.js';

export async function renderCatalog(main) {
  const [models, archs, datasets] = await Promise.all([
    listAll('/v1/models'),
    getJson('/v1/architectures'),
    getJson('/v1/datasets'),
  ]);
  fill(main,
    pageTitle('Catalog'),
    h('section', { 'aria-labelledby': 'models-h' },
      h('h2', { id: 'models-h' }, `Models (${models.length})`),
      models.length === 0
        ? h('p', {}, 'No model yet. ', h('a', { href: '#/upload' }, 'Upload one.'))
        : table(['Name', 'Architecture', 'Tensors', 'Size', 'sha256', 'Uploaded', 'Id'],
          models.map((m) => [m.name, m.architecture || '–', m.tensor_count, bytes(m.size_bytes),
            h('code', { title: m.sha256 }, m.sha256.slice(0, 12)), when(m.created_at), h('code', {}, m.id)]),
          'models-table')),
    h('section', { 'aria-labelledby': 'archs-h' },
      h('h2', { id: 'archs-h' }, `Architectures (${archs.items.length})`),
      table(['Name', 'Kind', 'Input', 'Tensors'],
        archs.items.map((a) => [a.name, a.builtin ? 'preset' : 'custom',
          a.spec && a.spec.input ? `[${a.spec.input.join(', ')}]` : '–', a.tensors.join(', ')]),
        'archs-table')),
    h('section', { 'aria-labelledby': 'datasets-h' },
      h('h2', { id: 'datasets-h' }, `Datasets (${datasets.items.length})`),
      table(['Id', 'Name', 'Format', 'Samples', 'Sample shape', 'Description'],
        datasets.items.map((d) => [h('code', {}, d.id), d.name, d.format, d.samples.toLocaleString('en'),
          `[${d.shape.join(', ')}]`, d.description || '']),
        'datasets-table')));
}

/** A table with a header row. */
export function table(head, rows, id) {
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}
