// The dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core. Loads BASE/dashboard from a live server that takes traffic
// meanwhile, checks that the page fetches nothing from elsewhere, logs no
// error, shows every model with its versions, and that its numbers move between
// refreshes; saves a screenshot.
// Usage: node dashboard_test.mjs BASE_URL SCREENSHOT.png [MODEL]
// Prints one JSON line of what it read; exit 0 when every check passed.
import { requireFromNodeModules } from "./node_modules_path.mjs";

const { chromium } = requireFromNodeModules("playwright-core");
const [base, screenshot, model = "digits"] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node dashboard_test.mjs BASE_URL SCREENSHOT.png [MODEL]");
  process.exit(2);
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
const number = (text) => parseFloat(String(text).replace(/[^0-9.\-]/g, ""));
const seconds = (text) => { // "420 µs", "1.2 ms", "2.00 s" as the page writes them
  const unit = /(µs|ms|s)$/.exec(text);
  return unit ? number(text) * { "µs": 1e-6, ms: 1e-3, s: 1 }[unit[1]] : NaN;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const foreign = [], errors = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));

  const response = await page.goto(base + "/dashboard");
  check(response.status() === 200, `GET /dashboard answered ${response.status()}`);
  await page.waitForFunction(() => document.getElementById("updated").textContent.startsWith("updated"),
                             null, { timeout: 15000 });
  const card = `[data-model="${model}"]`;
  await page.waitForSelector(card, { timeout: 5000 });
  const read = async () => ({
    updated: await page.textContent("#updated"),
    served: number(await page.textContent(`${card} [data-field=requests]`)),
    rps: await page.textContent(`${card} [data-field=rps]`),
    p50: await page.textContent(`${card} [data-field=p50]`),
    p99: await page.textContent(`${card} [data-field=p99]`),
    batch: await page.textContent(`${card} [data-field=batch]`),
    totalRps: await page.textContent("#total-rps"),
  });
  const first = await read();
  await page.waitForTimeout(4500); // two refreshes
  const second = await read();
  // Let the charts gather a few points before the screenshot.
  await page.waitForTimeout(8000);
  const third = await read();

  check(second.updated !== first.updated, "the refresh time did not change");
  check(second.served > first.served, `requests served did not grow (${first.served} -> ${second.served})`);
  check(third.served > second.served, `requests served did not grow (${second.served} -> ${third.served})`);
  check(number(third.rps) > 0, `req/s is not positive: ${third.rps}`);
  check(number(third.totalRps) > 0, `total req/s is not positive: ${third.totalRps}`);
  check(seconds(third.p50) > 0, `p50 is not a latency: ${third.p50}`);
  check(seconds(third.p99) >= seconds(third.p50), `p99 is not a latency >= p50: ${third.p99} vs ${third.p50}`);
  check(number(third.batch) >= 1, `mean batch size is not >= 1: ${third.batch}`);
  const chips = await page.$$eval(`${card} .chip`, (els) => els.map((e) => e.textContent));
  check(chips.some((c) => c.includes("available")), `no available version shown: ${chips}`);
  const models = await page.$$eval("[data-model]", (els) => els.map((e) => e.dataset.model));
  const paths = await page.$$eval(`${card} svg path`, (els) => els.length);
  check(paths >= 2, `the model's charts drew ${paths} paths`);
  const nodes = await page.$$eval("#nodes tr", (els) => els.length);
  check(nodes >= 1, "no cluster node listed");
  check(foreign.length === 0, `requests outside the server: ${foreign}`);
  check(errors.length === 0, `page errors: ${errors}`);

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ models, first, second, third, chips, chart_paths: paths, nodes }));
} finally {
  await browser.close();
}
if (failures.length) {
  console.error("FAILED:\n  " + failures.join("\n  "));
  process.exit(1);
}
console.log("dashboard: every check passed");
