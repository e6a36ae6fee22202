#!/usr/bin/env node
// How long each console view takes to show its data after a click (console.md: within 300 ms
// on loopback against the 1,000,000-user tenant). A measurement, not a test: no test runs it.
//
//   group-licensing generate --db big.db --users 1000000
//   group-licensing serve --db big.db            # then license "All users", e.g. as bench B1 does
//   node tests/browser/console-timing.mjs http://127.0.0.1:8080 [PATH ...]
//
// For each path (by default one of every view), the time from the client-side navigation to the
// moment the view shows its rows (no loading state left, a table or an empty state drawn),
// first on a cold answer cache, then again. The browser is /usr/bin/chromium (CHROMIUM=…).

import { chromium } from "playwright-core";

const [base, ...given] = process.argv.slice(2);
if (!base) {
  console.error("usage: node console-timing.mjs BASE_URL [PATH ...]");
  process.exit(2);
}
const paths = given.length
  ? given
  : ["/", "/groups", "/groups?q=100", "/groups/1", "/groups/1?tab=members", "/groups/1?tab=licenses", "/users", "/users?q=user99", "/users/4", "/products", "/products?all=1", "/products/ENTERPRISEPACK", "/rules", "/activity", "/activity?group=1", "/groups/1?tab=history"];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(new URL("/", base).toString());
await page.waitForFunction(() => !document.querySelector("main .state-loading") && document.querySelector("main h1"));
for (const path of paths) {
  const times = [];
  for (let round = 0; round < 2; round++) {
    times.push(
      await page.evaluate(async (to) => {
        const start = performance.now();
        // What a click on a link does (app.js): push the address, let the router draw.
        history.pushState(null, "", to);
        dispatchEvent(new PopStateEvent("popstate"));
        await new Promise((resolve) => {
          const drawn = () => {
            const main = document.getElementById("main");
            const done = !main.querySelector(".state-loading") && main.querySelector("h1") && main.querySelector("table, .state-empty, .tiles");
            if (done) resolve();
            else requestAnimationFrame(drawn);
          };
          drawn();
        });
        return performance.now() - start;
      }, path),
    );
  }
  console.log(`${path.padEnd(28)} first ${times[0].toFixed(0).padStart(4)} ms   again ${times[1].toFixed(0).padStart(4)} ms`);
}
await browser.close();
