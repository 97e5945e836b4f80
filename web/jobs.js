// Jobs page: every job of this tenant, newest first, with its status and progress; a page of
// 20 at a time ("Show more" follows the cursor).

import { getJson } from './api.js';
import { h, fill, when, badge, pageTitle, shortId } from './dom.js';

const ACTIVE = new Set(['queued', 'running']);

export async function renderJobs(main, _params, signal) {
  const body = h('tbody', {});
  const more = h('button', { type: 'button', hidden: true }, 'Show more');
  const refresh = h('button', { type: 'button' }, 'Refresh');
  let cursor = null;

  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    const page = await getJson(`/v1/jobs?limit=20${cursor ? `&cursor=${cursor}` : ''}`, { signal });
    for (const job of page.items) body.append(row(job));
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
    if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: '7' }, 'No job yet. ', h('a', { href: '#/jobs/new' }, 'Start one.'))));
  };
  more.addEventListener('click', () => load(false));
  refresh.addEventListener('click', () => load(true));

  fill(main,
    pageTitle('Jobs'),
    h('p', {}, h('a', { class: 'button primary', href: '#/jobs/new' }, 'New job'), ' ', refresh),
    h('div', { class: 'table-wrap' }, h('table', { id: 'jobs-table' },
      h('thead', {}, h('tr', {}, ['Job', 'Status', 'Progress', 'Methods', 'Architecture', 'Dataset', 'Created']
        .map((c) => h('th', { scope: 'col' }, c)))),
      body)),
    more);
  await load(true);
  // While a job is active, refresh the list every two seconds.
  const timer = setInterval(() => {
    if ([...body.querySelectorAll('.badge')].some((b) => ACTIVE.has(b.textContent))) load(true).catch(() => {});
  }, 2000);
  signal.addEventListener('abort', () => clearInterval(timer));
}

function row(job) {
  const p = job.progress;
  const progress = ACTIVE.has(job.status) && p
    ? h('span', {}, h('progress', { max: '1', value: String(p.fraction), 'aria-label': `Job ${shortId(job.id)} progress` }), ` ${p.stage}`)
    : job.error ? h('span', { class: 'muted' }, job.error.code) : '';
  return h('tr', { dataset: { job: job.id } },
    h('td', {}, h('a', { href: `#/jobs/${job.id}` }, h('code', {}, shortId(job.id)))),
    h('td', {}, badge(job.status)),
    h('td', {}, progress),
    h('td', {}, job.methods.join(', ')),
    h('td', {}, job.architecture),
    h('td', {}, job.dataset),
    h('td', {}, when(job.created_at)));
}
