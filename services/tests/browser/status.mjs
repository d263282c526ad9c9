// Drives the system Chromium over the monitor's /status page for services/tests/monitor_browser.rs
// and prints what it saw as one JSON object; the Rust test judges it.
//
//   node status.mjs PLAYWRIGHT_PACKAGE_JSON http://127.0.0.1:PORT
//
// playwright-core is the one the reports crate's browser tests install
// (reports/tests/browser, `npm ci`): it is loaded from the package.json given. CHROMIUM
// names the browser (default /usr/bin/chromium); playwright-core downloads none.
import { createRequire } from 'node:module';

const [packageJson, base] = process.argv.slice(2);
const { chromium } = createRequire(packageJson)('playwright-core');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const out = { errors: [] };
const report = (node, port, role) => fetch(`${base}/api/report`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ node, address: `127.0.0.1:${port}`, coordinator: 'n2', group: 0, status: 'Normal', role }),
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(`${base}/status`, { waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 10000 });
  out.rows_before = await page.locator('#nodes tbody tr').count();
  // A node reports while the page is open: its row and its pairs appear without a reload.
  const started = Date.now();
  await report('n3', 7003, 'Follower');
  await page.waitForSelector('#nodes tbody tr[data-node="n3"]', { timeout: 10000 });
  out.live_ms = Date.now() - started;
  out.rows_after = await page.locator('#nodes tbody tr').count();
  out.pairs = await page.$$eval('#pairs input', (inputs) => inputs.map((i) => i.value));
  // Tick n1-n3 (a pair that came live) and submit.
  await page.check('#pairs input[value="n1 n3"]');
  await Promise.all([page.waitForURL(`${base}/status`), page.click('button[value="block"]')]);
  await page.waitForFunction(() => document.getElementById('blocked').textContent !== 'none', null, { timeout: 10000 });
  out.blocked_text = await page.textContent('#blocked');
  out.api_blocks = await (await fetch(`${base}/api/blocks`)).json();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
