// Drives the system Chromium over the /status page of a running cluster's monitor, one step
// at a time, for tests/monitor_browser.rs (the `conclave` package's test), which runs the
// nodes and judges what this prints.
//
//   node follow.mjs PLAYWRIGHT_PACKAGE_JSON http://127.0.0.1:PORT
//
// Each line on stdin is one step as JSON; each step prints one JSON line on stdout when done
// (`{"step": ..., ...}`), or `{"step": "error", "error": ...}` and exits 1. The steps:
//
//   {"do": "table", "nodes": ["a", ...], "leader": "d"}  wait until the table lists exactly
//                                                       these nodes, each naming the leader,
//                                                       which leads while the others follow
//   {"do": "block", "pair": "a d"}                      tick the pair, press Block
//   {"do": "reset"}                                     press Reset
//   {"do": "watch"}                                     mark the page (a reload would lose it)
//   {"do": "killed", "node": "d", "leader": "c"}        wait, without reloading, until the
//                                                       others name the new leader (it
//                                                       leading, they following) and the
//                                                       killed node's row is stale
//
// playwright-core is the one the reports crate's browser tests install
// (reports/tests/browser, `npm ci`): it is loaded from the package.json given. CHROMIUM
// names the browser (default /usr/bin/chromium); playwright-core downloads none.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const [packageJson, base] = process.argv.slice(2);
const { chromium } = createRequire(packageJson)('playwright-core');
const say = (o) => console.log(JSON.stringify(o));
const steps = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// How long the page may take to show what the nodes did (their reports come every second).
const BOUND = 30000;

const rows = (page) => page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => ({
  node: tr.dataset.node,
  coordinator: tr.children[2].textContent,
  role: tr.children[5].textContent,
  stale: tr.classList.contains('stale'),
})));

// The form posts and the monitor redirects to /status: a new page, live again.
async function submit(page, action) {
  await Promise.all([page.waitForURL(`${base}/status`), page.click(`button[value="${action}"]`)]);
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: BOUND });
  return page.textContent('#blocked');
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/status`, { waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: BOUND });
  for (;;) {
    const next = await steps.next();
    if (next.done) break;
    const step = JSON.parse(next.value);
    const started = Date.now();
    switch (step.do) {
      case 'table':
        await page.waitForFunction(({ nodes, leader }) => {
          const trs = [...document.querySelectorAll('#nodes tbody tr')];
          return trs.map((tr) => tr.dataset.node).sort().join(' ') === [...nodes].sort().join(' ')
            && trs.every((tr) => tr.children[2].textContent === leader
              && tr.children[5].textContent === (tr.dataset.node === leader ? 'Leader' : 'Follower'));
        }, step, { timeout: BOUND });
        say({ step: 'table', rows: await rows(page) });
        break;
      case 'block':
        await page.check(`#pairs input[value="${step.pair}"]`);
        say({ step: 'block', blocked: await submit(page, 'block') });
        break;
      case 'reset':
        say({ step: 'reset', blocked: await submit(page, 'reset') });
        break;
      case 'watch':
        await page.evaluate(() => { window.conclaveMark = true; });
        say({ step: 'watch', updates: Number(await page.getAttribute('body', 'data-updates')) });
        break;
      case 'killed':
        await page.waitForFunction(({ node, leader }) => {
          const trs = [...document.querySelectorAll('#nodes tbody tr')];
          return trs.length > 1 && trs.every((tr) => (tr.dataset.node === node
            ? tr.classList.contains('stale')
            : tr.children[2].textContent === leader
              && tr.children[5].textContent === (tr.dataset.node === leader ? 'Leader' : 'Follower')));
        }, step, { timeout: BOUND });
        say({
          step: 'killed',
          ms: Date.now() - started,
          rows: await rows(page),
          not_reloaded: await page.evaluate(() => window.conclaveMark === true),
          updates: Number(await page.getAttribute('body', 'data-updates')),
          timeline: await page.$$eval('#timeline li', (lis) => lis.map((li) => li.textContent)),
        });
        break;
      default:
        throw new Error(`unknown step ${next.value}`);
    }
  }
  say({ step: 'done', errors });
} catch (e) {
  say({ step: 'error', error: String(e), errors });
  process.exitCode = 1;
} finally {
  await browser.close();
}
