// The page's entry point: the API key form and a hash router that shows one page at a time in
// <main>. Each page is `render(main, params, signal)`; `signal` aborts when the reader leaves
// the page (closing its event stream).

import { getKey, setKey } from './api.js';
import { h, fill, showError } from './dom.js';
import { renderJobs } from './jobs.js';
import { renderNewJob } from './newjob.js';
import { renderJob } from './job.js';
import { renderUpload } from './upload.js';
import { renderCatalog } from './catalog.js';

const ROUTES = [
  { re: /^\/?$/, nav: 'jobs', render: renderJobs },
  { re: /^\/jobs$/, nav: 'jobs', render: renderJobs },
  { re: /^\/jobs\/new$/, nav: 'new', render: renderNewJob },
  { re: /^\/jobs\/([0-9a-fA-F-]{36})$/, nav: 'jobs', render: renderJob },
  { re: /^\/upload$/, nav: 'upload', render: renderUpload },
  { re: /^\/catalog$/, nav: 'catalog', render: renderCatalog },
];

let current = null;

async function show() {
  const main = document.getElementById('main');
  const path = decodeURIComponent(location.hash.replace(/^#/, ''));
  const route = ROUTES.find((r) => r.re.test(path));
  if (current) current.abort();
  current = new AbortController();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (route && a.dataset.nav === route.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!route) {
    fill(main, h('h1', { tabindex: '-1', class: 'page-title' }, 'Not found'),
      h('p', {}, 'No page here. ', h('a', { href: '#/jobs' }, 'See the jobs.')));
    return;
  }
  const params = path.match(route.re).slice(1);
  const signal = current.signal;
  fill(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    await route.render(main, params, signal);
  } catch (err) {
    if (err.name !== 'AbortError' && !signal.aborted) showError(main, err);
  }
  if (!signal.aborted) {
    const title = main.querySelector('.page-title');
    if (title && document.activeElement === document.body) title.focus({ preventScroll: true });
    document.title = `${title ? title.textContent : 'gmfuse'} · gmfuse`;
  }
}

function keyForm() {
  const form = document.getElementById('key-form');
  const input = document.getElementById('api-key');
  const state = document.getElementById('key-state');
  const describe = () => { state.textContent = getKey() ? 'key set for this tab' : 'no key'; };
  input.value = getKey();
  describe();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setKey(input.value.trim());
    describe();
    show();
  });
}

keyForm();
// The skip link focuses the content; as a plain `#main` link it would be taken for a route.
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', show);
show();
