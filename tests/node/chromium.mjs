// Headless Chromium for the browser tests: the Debian package at
// /usr/bin/chromium, driven by playwright-core, never a browser Playwright
// looks for or fetches by itself.
//
// A browser test is skipped when Chromium (or another file it needs) is
// missing, unless CHATGATE_REQUIRE_BROWSER=1 makes that a failure:
//
//   const { skip, ensure } = needs();
//   test('…', { skip, timeout: 120000 }, async (t) => {
//     ensure();
//     …
//     const browser = await launch(t);
import { existsSync } from 'node:fs';

const CHROMIUM = '/usr/bin/chromium';

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

// needs states what a browser test needs: Chromium, and each of more, a
// [path, how to get it] pair. It returns skip, the test's skip option: why
// the test is skipped, or false when nothing is missing or when
// CHATGATE_REQUIRE_BROWSER=1. And ensure, which the test calls first: it
// throws what is missing, so that a required browser test fails rather
// than skips.
export function needs(more = []) {
  const missing = () => [[CHROMIUM, 'apt-get install -y chromium'], ...more]
    .filter(([path]) => !existsSync(path))
    .map(([path, how]) => `${path} is missing (${how})`);
  const now = missing();
  const required = process.env.CHATGATE_REQUIRE_BROWSER === '1';
  return {
    skip: now.length > 0 && !required ? `${now.join('; ')} (CHATGATE_REQUIRE_BROWSER=1 makes this a failure)` : false,
    ensure() {
      const m = missing();
      if (m.length > 0) throw new Error(`CHATGATE_REQUIRE_BROWSER=1 but ${m.join('; ')}`);
    },
  };
}

// launch starts headless Chromium and closes it after the test t.
// playwright-core is imported here, not at the top of a test file, so that
// a skipped test does not need it.
export async function launch(t) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch(LAUNCH);
  t.after(() => browser.close());
  return browser;
}
