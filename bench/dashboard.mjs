// Keeps one dashboard open on a running server, as an operator would (the
// overview, polling /admin/stats every second), for bench/ab's "dashboard"
// option: the cost of watching the server while it works.
//
//   node bench/dashboard.mjs URL [build-dir]
//
// Prints "open" once the overview shows its first sample, then stays until
// its standard input closes. Debian's chromium, driven by playwright-core
// as pinned for tests/ui (installed into build-dir/ui-npm when missing).
// With an admin.token in WALLEX_TOKEN it logs in with it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const [url, buildDir = path.join(ROOT, 'build')] = process.argv.slice(2);
if (!url) {
  console.error('usage: dashboard.mjs URL [build-dir]');
  process.exit(2);
}
const prefix = path.join(path.resolve(buildDir), 'ui-npm');
if (!fs.existsSync(path.join(prefix, 'node_modules', 'playwright-core'))) {
  fs.mkdirSync(prefix, { recursive: true });
  for (const f of ['package.json', 'package-lock.json'])
    fs.copyFileSync(path.join(ROOT, 'tests', 'ui', f), path.join(prefix, f));
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: prefix, stdio: 'ignore' });
}
const { chromium } = createRequire(path.join(prefix, 'package.json'))('playwright-core');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
await page.goto(url + '/ui#overview');
if (process.env.WALLEX_TOKEN) {
  await page.fill('#token', process.env.WALLEX_TOKEN);
  await page.press('#token', 'Enter');
}
await page.waitForFunction(() => /updated/.test(document.getElementById('updated').textContent), null,
  { timeout: 30000 });
console.log('open');
process.stdin.resume();
process.stdin.on('end', async () => {
  await browser.close();
  process.exit(0);
});
