// Browser test of the web UI: a real `gmfuse serve` (temp data dir, loopback port, API keys
// required), Debian's chromium driven by playwright-core. It uploads the demo models through
// the page (one picked, one dropped), starts a job, waits for the curves, checks that every
// figure on the page equals the API's report, downloads a fused file and checks its
// safetensors header, cancels a queued job from its page, and saves screenshots of the main
// pages under $GMFUSE_UI_SCREENSHOTS (default target/ui-screenshots). Run by scripts/ui-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = process.env.GMFUSE_BIN || path.join(ROOT, 'target/debug/gmfuse');
const SHOTS = process.env.GMFUSE_UI_SCREENSHOTS || path.join(ROOT, 'target/ui-screenshots');
const MODEL_A = path.join(ROOT, 'assets/demo/model-a.safetensors');
const MODEL_B = path.join(ROOT, 'assets/demo/model-b.safetensors');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dataDir; let server; let base; let key; let browser; let page; let profile;
const ctx = {};

const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  srv.on('error', reject);
});

/** The API with the key, as a client other than the page. */
async function api(pathname, init = {}) {
  const headers = { Authorization: `Bearer ${key}`, ...(init.headers || {}) };
  return fetch(`${base}${pathname}`, { ...init, headers });
}

/** Load the page afresh at `hash` (a new document, the same tab: the key stays). */
async function visit(hash) {
  await page.goto('about:blank');
  await page.goto(`${base}/${hash}`);
}

const shot = async (name) => {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
};

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'gmfuse-ui-'));
  profile = mkdtempSync(path.join(os.tmpdir(), 'gmfuse-ui-chromium-'));
  key = execFileSync(BIN, ['keys', '--data-dir', dataDir, 'create', '--tenant', 'ui'], { encoding: 'utf8' }).trim().split('\n').pop();
  assert.match(key, /^gmf_[0-9a-f]{64}$/);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--no-demo',
    '--eval-limit', '1000', '--workers', '1', '--compute-threads', '2', '--poll-secs', '0.2', '--require-auth'],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  let exited = null;
  server.on('exit', (code) => { exited = code; });
  for (let i = 0; ; i += 1) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch (_) { /* not yet */ }
    if (exited !== null) throw new Error(`gmfuse serve exited with ${exited}`);
    if (i > 300) throw new Error('gmfuse serve did not answer /healthz in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1366, height: 900 }, acceptDownloads: true,
  });
  page = browser.pages()[0] || await browser.newPage();
  page.on('pageerror', (e) => { ctx.pageErrors = [...(ctx.pageErrors || []), String(e)]; });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
  console.log(`UI screenshots in ${SHOTS}: ${readdirSync(SHOTS).sort().join(', ')}`);
});

test('without a key the page shows the API problem, and with it the jobs list', async () => {
  const res = await fetch(`${base}/v1/jobs`);
  assert.equal(res.status, 401);
  const problem = await res.json();
  const csp = (await fetch(`${base}/`)).headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  await visit('#/jobs');
  const alert = page.locator('[role=alert]');
  await alert.waitFor();
  assert.equal(await alert.locator('.problem-title').textContent(), problem.title);
  assert.equal(await alert.locator('.problem-detail').textContent(), problem.detail);
  await page.fill('#api-key', key);
  await page.click('text=Use key');
  await page.locator('#jobs-table').waitFor();
  assert.equal(await page.locator('#key-state').textContent(), 'key set for this tab');
});

test('the keyboard moves through a page: heading focused on load, links, skip link', async () => {
  await visit('#/jobs');
  await page.locator('#jobs-table').waitFor();
  const focused = () => page.evaluate(() => document.activeElement.textContent);
  // A shown page puts focus on its heading; Tab goes on to its first control.
  assert.equal(await focused(), 'Jobs');
  await page.keyboard.press('Tab');
  assert.equal(await focused(), 'New job');
  await page.keyboard.press('Enter');
  await page.locator('#job-form').waitFor();
  assert.equal(await focused(), 'New job');
  assert.match(page.url(), /#\/jobs\/new$/);
  // The skip link is the first stop of the page and jumps to the content without leaving it.
  const first = await page.evaluate(() => document.querySelector('a[href], button, input, select').textContent);
  assert.equal(first, 'Skip to content');
  await page.focus('.skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  assert.match(page.url(), /#\/jobs\/new$/);
});

test('the demo models upload through the page: one picked, one dropped', async () => {
  await visit('#/upload');
  await page.selectOption('#arch', 'mnist-cnn');
  await page.setInputFiles('#files', MODEL_A);
  const b64 = readFileSync(MODEL_B).toString('base64');
  await page.evaluate(({ b64, name }) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bin], name));
    document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { b64, name: 'model-b.safetensors' });
  const states = page.locator('#uploads .upload-state');
  await page.waitForFunction(() => [...document.querySelectorAll('#uploads .upload-state')].filter((s) => s.textContent === 'stored').length === 2);
  assert.deepEqual(await states.allTextContents(), ['stored', 'stored']);
  assert.deepEqual(await page.locator('#uploads progress').evaluateAll((bars) => bars.map((b) => b.value)), [100, 100]);
  await shot('upload.png');
  const models = await (await api('/v1/models')).json();
  assert.deepEqual(models.items.map((m) => m.name).sort(), ['model-a', 'model-b']);
  assert.ok(models.items.every((m) => m.architecture === 'mnist-cnn'));
  ctx.models = Object.fromEntries(models.items.map((m) => [m.name, m.id]));
});

test('the catalog lists the models, the presets and the datasets', async () => {
  await visit('#/catalog');
  await page.locator('#models-table').waitFor();
  assert.equal(await page.locator('#models-table tbody tr').count(), 2);
  const datasets = await (await api('/v1/datasets')).json();
  assert.equal(await page.locator('#datasets-table tbody tr').count(), datasets.items.length);
  const archs = await (await api('/v1/architectures')).json();
  assert.equal(await page.locator('#archs-table tbody tr').count(), archs.items.length);
  await shot('catalog.png');
});

test('a refused job shows the problem title and detail the API gives', async () => {
  await visit('#/jobs/new');
  await page.locator('#job-form').waitFor();
  await page.selectOption('#model-1', ctx.models['model-a']);
  await page.selectOption('#model-2', ctx.models['model-b']);
  // Activation matching calibrated on the scored set: the server refuses it (422).
  await page.check('#method-activation_matching');
  await page.selectOption('#calibration', 'mnist-test');
  await page.click('#submit-job');
  const alert = page.locator('#job-errors [role=alert]');
  await alert.waitFor();
  const body = { models: [ctx.models['model-a'], ctx.models['model-b']], methods: ['gamf', 'activation_matching'],
    dataset: 'mnist-test', solvers: ['sm'], calibration: 'mnist-test', proportions: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] };
  const res = await api('/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 422);
  const problem = await res.json();
  assert.equal(await alert.locator('.problem-title').textContent(), problem.title);
  assert.equal(await alert.locator('.problem-detail').textContent(), problem.detail);
  assert.match(await alert.textContent(), new RegExp(problem.code));
  assert.match(page.url(), /#\/jobs\/new$/);
  await shot('new-job-refused.png');
});

test('a job started on the page streams to its report, whose figures equal the API report', async () => {
  await visit('#/jobs/new');
  await page.locator('#job-form').waitFor();
  await page.selectOption('#model-1', ctx.models['model-a']);
  await page.selectOption('#model-2', ctx.models['model-b']);
  await page.check('#method-weight_matching');
  await page.fill('#proportions', '0:1:0.25');
  await page.click('#submit-job');
  await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
  ctx.job = page.url().split('/').pop();
  await page.locator('#curves-table').waitFor({ timeout: 240_000 });
  assert.equal(await page.locator('#job-status').textContent(), 'succeeded');
  assert.equal(await page.locator('#job-progress').evaluate((b) => b.value), 1);
  await shot('report.png');

  const report = await (await api(`/v1/jobs/${ctx.job}/report`)).json();
  assert.deepEqual(report.proportions, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(report.curves.map((c) => c.method), ['gamf', 'weight_matching', 'none']);
  for (const c of report.curves) {
    const k = c.solver ? `${c.method}:${c.solver}` : c.method;
    for (const p of c.points) {
      const cell = page.locator(`[data-curve="${k}"][data-proportion="${p.proportion}"]`);
      assert.equal(await cell.textContent(), p.accuracy.toFixed(2), `${k} at ${p.proportion}`);
    }
  }
  for (const [i, m] of report.inputs.entries()) {
    assert.equal(await page.locator(`[data-input="${i}"]`).textContent(), m.accuracy.toFixed(2));
  }
  assert.equal(await page.locator('[data-best]').textContent(), report.best.accuracy.toFixed(2));
  // The chart: one marker per point, one dashed line per input.
  const points = report.curves.reduce((n, c) => n + c.points.length, 0);
  assert.equal(await page.locator('#curves svg.chart circle').count(), points);
  assert.equal(await page.locator('#curves svg.chart line.level').count(), report.inputs.length);
  // Per-group summaries of the first matching: one row per layer, its channel count.
  const perms = report.matchings[0].permutations;
  const rows = page.locator('#groups-table tbody tr');
  assert.equal(await rows.count(), perms.length);
  for (const [i, p] of perms.entries()) {
    assert.equal(await rows.nth(i).locator('td').nth(1).textContent(), String(p.perm.length));
    const fixed = p.perm.filter((j, k) => j === k).length;
    assert.equal(await rows.nth(i).locator('td').nth(2).textContent(), String(fixed));
  }
  assert.equal(await page.locator('#timings-table tbody tr').count(), report.timings.length + 1);
  ctx.report = report;
});

test('a fused file downloads from the report with a valid safetensors header', async () => {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-fused="gamf@0.5"]')]);
  const file = path.join(dataDir, 'fused.safetensors');
  await dl.saveAs(file);
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.ok(n > 2 && 8 + n <= bytes.length, `header length ${n}`);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  assert.ok(tensors.includes('conv1.weight') && tensors.includes('fc2.weight'), tensors.join(','));
  assert.equal(header.__metadata__['gmfuse.proportion'], '0.5');
  assert.equal(header.__metadata__['gmfuse.method'], 'gamf');
  const res = await api(`/v1/jobs/${ctx.job}/fused?proportion=0.5&method=gamf`);
  const sha = createHash('sha256').update(bytes).digest('hex');
  assert.equal(res.headers.get('etag'), `"${sha}"`);
});

test('the jobs list shows the job succeeded', async () => {
  await visit('#/jobs');
  const row = page.locator(`tr[data-job="${ctx.job}"]`);
  await row.waitFor();
  assert.equal(await row.locator('.badge').textContent(), 'succeeded');
  await shot('jobs.png');
});

test('a running job shows its stage live, and a queued job is canceled from its page', async () => {
  const submit = async (body) => (await (await api('/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json()).id;
  const models = [ctx.models['model-a'], ctx.models['model-b']];
  const proportions = Array.from({ length: 101 }, (_, k) => k / 100);
  const long = await submit({ models, methods: ['gamf', 'weight_matching', 'activation_matching'], proportions });
  const queued = await submit({ models, methods: ['gamf'] });
  await visit(`#/jobs/${long}`);
  await page.waitForFunction(() => document.getElementById('job-stage')?.textContent !== '');
  await shot('job-running.png');
  await visit(`#/jobs/${queued}`);
  await page.locator('#cancel-job').waitFor();
  assert.equal(await page.locator('#job-status').textContent(), 'queued');
  await page.click('#cancel-job');
  await page.waitForFunction(() => document.getElementById('job-status')?.textContent === 'canceled');
  assert.ok(await page.locator('#cancel-job').isHidden());
  await api(`/v1/jobs/${long}/cancel`, { method: 'POST' });
  assert.deepEqual(ctx.pageErrors || [], []);
});
