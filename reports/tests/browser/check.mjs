// Drives the system Chromium for the browser tests of conclave-reports (tests/browser.rs),
// and prints what it saw as one JSON object; the Rust tests judge it.
//
//   node check.mjs report FILE.html SCREENSHOT.png
//   node check.mjs mermaid FILE.mmd node_modules/mermaid/dist/mermaid.min.js
//
// CHROMIUM names the browser (default /usr/bin/chromium). playwright-core downloads no
// browser: it drives the one given.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const out = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(m.text()); });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  if (mode === 'report') await report(page, args[0], args[1]);
  else if (mode === 'mermaid') await mermaid(page, args[0], args[1]);
  else throw new Error('unknown mode ' + mode);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

async function report(page, html, screenshot) {
  const started = Date.now();
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-drawn]', { timeout: 60000 });
  out.open_ms = Date.now() - started;
  const nav = await page.evaluate(() => ({
    drawn_ms: window.conclaveChart && window.conclaveChart.firstDrawMs,
    dom_content_loaded_ms: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
  }));
  Object.assign(out, nav);
  const count = (sel) => page.evaluate((s) => document.querySelectorAll(s).length, sel);
  out.lanes = await count('#chart-svg g.lane');
  out.msgs = await count('#chart-svg g.msg');
  out.duplicates = await count('#chart-svg g.msg.duplicate');
  out.dropped = await count('#chart-svg g.msg.dropped');
  out.crosses = await count('#chart-svg g.msg.dropped path.cross');
  out.beliefs = await count('#chart-svg rect.belief');
  out.marks = await count('#chart-svg g.mark');
  out.in_view = await page.evaluate(() => Number(document.getElementById('chart-svg').getAttribute('data-messages')));
  out.total_messages = await page.evaluate(() => window.conclaveChart.messages);
  await page.screenshot({ path: screenshot, fullPage: false });

  // "first violation": zoomed in far from it and scrolled to the bottom, a click brings it
  // into view.
  out.has_button = (await count('#first-violation')) === 1;
  if (out.has_button) {
    const v = await page.evaluate(() => JSON.parse(document.getElementById('conclave-data').textContent).violation);
    out.violation_at = v.at;
    await page.evaluate((at) => {
      const end = JSON.parse(document.getElementById('conclave-data').textContent).end;
      const span = Math.max(50, end / 50);
      // A window as far from the violation as the run allows.
      const t0 = at > end / 2 ? 0 : end - span;
      window.conclaveChart.show(t0, t0 + span);
      window.scrollTo(0, document.body.scrollHeight);
    }, v.at);
    out.before = await page.evaluate(() => window.conclaveChart.view());
    out.line_before = await count('#violation-line');
    const drawn = await page.evaluate(() => document.body.getAttribute('data-drawn'));
    await page.click('#first-violation');
    await page.waitForFunction((d) => document.body.getAttribute('data-drawn') !== d, drawn);
    await page.waitForTimeout(100);
    out.after = await page.evaluate(() => window.conclaveChart.view());
    out.line_after = await page.evaluate(() => {
      const line = document.getElementById('violation-line');
      if (!line) return null;
      const r = line.getBoundingClientRect();
      return { x: r.x, top: r.top, bottom: r.bottom, vw: window.innerWidth, vh: window.innerHeight };
    });
    out.chart_top = await page.evaluate(() => document.getElementById('chart').getBoundingClientRect().top);
    await page.screenshot({ path: screenshot.replace(/\.png$/, '.violation.png') });
  }

  // The whole run in view, then the filters: a node off, a kind off.
  await page.click('#zoom-fit');
  await page.waitForTimeout(100);
  out.fit = {
    msgs: await count('#chart-svg g.msg'),
    density: await count('#chart-svg path.density'),
    view: await page.evaluate(() => window.conclaveChart.view()),
  };
  const second = await page.evaluate(() => JSON.parse(document.getElementById('conclave-data').textContent).lanes[1]);
  await page.click(`#node-filter input[data-node="${second}"]`);
  const kind = await page.evaluate(() => JSON.parse(document.getElementById('conclave-data').textContent).kinds[0]);
  await page.click(`#kind-filter input[data-kind="${kind}"]`);
  await page.waitForTimeout(100);
  out.filtered = {
    node: second,
    kind,
    lanes: await count('#chart-svg g.lane'),
    lane_of_node: await count(`#chart-svg g.lane[data-node="${second}"]`),
    msgs_of_kind: await count(`#chart-svg g.msg[data-kind="${kind}"]`),
    msgs: await count('#chart-svg g.msg'),
  };
  await page.screenshot({ path: screenshot.replace(/\.png$/, '.filtered.png') });
}

async function mermaid(page, mmd, script) {
  const text = readFileSync(mmd, 'utf8');
  await page.setContent('<!DOCTYPE html><html><body><div id="out"></div></body></html>');
  await page.addScriptTag({ path: script });
  Object.assign(out, await page.evaluate(async (text) => {
    const m = window.mermaid;
    m.initialize({ startOnLoad: false, maxTextSize: 10000000, securityLevel: 'strict' });
    try {
      await m.parse(text);
      const { svg } = await m.render('diagram', text);
      const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
      const texts = Array.from(doc.querySelectorAll('text')).map((t) => t.textContent);
      return {
        ok: true,
        svg_bytes: svg.length,
        is_svg: doc.documentElement.nodeName === 'svg',
        syntax_error: /Syntax error/i.test(svg),
        texts: Array.from(new Set(texts)),
      };
    } catch (e) {
      return { ok: false, error: String(e && e.message || e) };
    }
  }, text));
}
