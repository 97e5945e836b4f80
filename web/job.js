// Job page: the job's status, stage and progress bar, live from its event stream, a cancel
// button while it is active, and — once it has succeeded — its report.

import { call, followEvents, getJson } from './api.js';
import { h, fill, badge, when, showError, pageTitle, shortId } from './dom.js';
import { renderReport } from './report.js';

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

export async function renderJob(main, [id], signal) {
  let job = await getJson(`/v1/jobs/${id}`, { signal });
  const status = h('span', { id: 'job-status' }, badge(job.status));
  const stage = h('span', { id: 'job-stage' }, '');
  const bar = h('progress', { id: 'job-progress', max: '1', value: '0', 'aria-labelledby': 'progress-label' });
  const percent = h('span', { id: 'job-percent' }, '');
  const cancel = h('button', { type: 'button', id: 'cancel-job', class: 'danger' }, 'Cancel job');
  const notes = h('div', { id: 'job-notes', 'aria-live': 'polite' });
  const report = h('div', { id: 'report' });

  const update = (view) => {
    fill(status, badge(view.status));
    if (view.progress) {
      stage.textContent = view.progress.stage;
      bar.value = view.progress.fraction;
      percent.textContent = `${Math.round(view.progress.fraction * 100)} %`;
    }
    if (view.status === 'succeeded') { bar.value = 1; percent.textContent = '100 %'; }
    cancel.hidden = TERMINAL.has(view.status);
  };
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await call('POST', `/v1/jobs/${id}/cancel`);
      fill(notes, 'Cancel requested; the job stops at its next checkpoint.');
    } catch (err) {
      showError(notes, err);
      cancel.disabled = false;
    }
  });

  fill(main,
    pageTitle(`Job ${shortId(id)}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Id'), h('dd', {}, h('code', {}, id)),
      h('dt', {}, 'Status'), h('dd', {}, status),
      h('dt', {}, 'Methods'), h('dd', {}, job.methods.join(', ')),
      h('dt', {}, 'Architecture'), h('dd', {}, job.architecture),
      h('dt', {}, 'Dataset'), h('dd', {}, job.dataset),
      h('dt', {}, 'Models'), h('dd', {}, job.models.map((m) => h('code', {}, shortId(m))).flatMap((c, i) => (i ? [', ', c] : [c]))),
      h('dt', {}, 'Created'), h('dd', {}, when(job.created_at))),
    h('div', { class: 'progress-row' },
      h('span', { id: 'progress-label' }, 'Stage: '), stage, ' ', bar, ' ', percent, ' ', cancel),
    notes,
    report);
  update(job);

  if (!TERMINAL.has(job.status)) {
    try {
      await followEvents(id, (_type, ev) => update(ev), signal);
    } catch (err) {
      if (signal.aborted) return;
      showError(notes, err);
    }
    if (signal.aborted) return;
    job = await getJson(`/v1/jobs/${id}`, { signal });
    update(job);
  }
  await finish(job, report, notes);
}

async function finish(job, report, notes) {
  if (job.status === 'succeeded') {
    const data = await getJson(`/v1/jobs/${job.id}/report`);
    renderReport(report, data);
  } else if (job.status === 'failed' && job.error) {
    showError(notes, { problem: { title: `Job failed: ${job.error.code}`, detail: job.error.message } });
  } else if (job.status === 'canceled') {
    fill(notes, 'The job was canceled.');
  }
}
