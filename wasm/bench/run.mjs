// The browser benchmark: per-filter latency of `validateScimFilter` / `validateLdapFilter` in
// headless Chromium over the shared corpus, side by side with the same parser natively
// (`usersync-filter-bench latency`, release build) as the baseline, and the module's load
// time. Run from the repository root:  node wasm/bench/run.mjs   (after wasm/build.sh)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, launch, wasmDir } from "../tests/browser/harness.mjs";

const root = join(wasmDir, "..");
const fixture = (name) => JSON.parse(readFileSync(join(root, "tests", "fixtures", name), "utf8"));
const typical = (cases) =>
  cases.filter((c) => c.strict !== true && !(c.note ?? "").includes("limit")).map((c) => c.filter);
const scim = fixture("filters.json");
const scimFilters = [...typical(scim.valid), ...typical(scim.invalid)];
const ldap = fixture("ldap_filters.json");
const ldapFilters = [...ldap.valid, ...ldap.invalid].map((c) => c.filter);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const fmt = (x) => x.toFixed(2).padStart(7);

// Native baseline.
const scratch = mkdtempSync(join(tmpdir(), "usersync-wasm-bench-"));
const file = join(scratch, "filters.json");
writeFileSync(file, JSON.stringify(scimFilters));
execFileSync("cargo", ["build", "--release", "--locked", "-q", "-p", "usersync-benches", "--bin", "usersync-filter-bench"], {
  cwd: root,
  stdio: "inherit",
});
const native = JSON.parse(
  execFileSync(join(root, "target", "release", "usersync-filter-bench"), ["latency", file], { encoding: "utf8" }),
).ns.map((ns) => ns / 1000);
rmSync(scratch, { recursive: true, force: true });

// Chromium.
const server = await serve();
const browser = await launch();
const loads = [];
let scimUs, ldapUs;
try {
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext(); // a cold cache each time
    const page = await context.newPage();
    await page.goto(`${server.base}/bench/bench.html`);
    await page.waitForSelector("body[data-ready]", { state: "attached" });
    loads.push(await page.evaluate(() => window.loadMs));
    if (i === 4) {
      scimUs = await page.evaluate(([f]) => window.latency(f, "scim", 20), [scimFilters]);
      ldapUs = await page.evaluate(([f]) => window.latency(f, "ldap", 20), [ldapFilters]);
    }
    await context.close();
  }
} finally {
  await browser.close();
  server.stop();
}

const ratios = scimUs.map((us, i) => us / native[i]);
const gz = gzipSync(readFileSync(join(wasmDir, "pkg", "web", "usersync_bg.wasm")), { level: 9 }).length;
console.log(`SCIM filters: ${scimFilters.length} (corpus, valid and invalid); LDAP filters: ${ldapFilters.length}`);
console.log(`                         median      p90   (µs per validation)`);
console.log(`Chromium  validateScim  ${fmt(median(scimUs))}  ${fmt(p90(scimUs))}`);
console.log(`native    Filter::parse ${fmt(median(native))}  ${fmt(p90(native))}`);
console.log(`ratio  Chromium / native ${fmt(median(ratios))}  ${fmt(p90(ratios))}`);
console.log(`Chromium  validateLdap  ${fmt(median(ldapUs))}  ${fmt(p90(ldapUs))}`);
console.log(`module load (fetch + compile + instantiate, cold): median ${median(loads).toFixed(1)} ms of ${loads.map((l) => l.toFixed(1)).join(", ")}`);
console.log(`module size: ${(gz / 1024).toFixed(1)} KiB gzipped`);
