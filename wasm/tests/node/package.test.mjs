// The npm package as a user gets it: `npm pack` of wasm/pkg installed into a fresh project,
// imported by its name from an ES module and required from CommonJS. Run by wasm/test.sh
// (`node --test`) after wasm/build.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "pkg");
const project = mkdtempSync(join(tmpdir(), "usersync-npm-"));
const tarball = execFileSync("npm", ["pack", pkg, "--pack-destination", project, "--silent"], {
  encoding: "utf8",
}).trim().split("\n").pop();
writeFileSync(join(project, "package.json"), JSON.stringify({ name: "admin-ui", private: true, type: "module" }));
execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", join(project, tarball)], {
  cwd: project,
  stdio: "inherit",
});
test.after(() => rmSync(project, { recursive: true, force: true }));

/** Runs `source` as a file of the user's project and returns what it printed, as JSON. */
function run(file, source) {
  writeFileSync(join(project, file), source);
  return JSON.parse(execFileSync("node", [file], { cwd: project, encoding: "utf8" }));
}

test("an ES module imports the package by name", () => {
  const out = run("check.mjs", `
    import { validateScimFilter, validateLdapFilter, formatScimFilter, parseScimFilter,
             completeScimFilter, ScimSchemas, version } from "@usersync/filters";
    const bad = validateScimFilter('userName eq "a" and', { resourceType: "User" });
    let thrown;
    try { parseScimFilter("emails[type eq") } catch (e) {
      thrown = { name: e.name, code: e.code, position: e.position, isError: e instanceof Error };
    }
    let misuse;
    try { validateScimFilter(42) } catch (e) { misuse = { name: e.name, code: e.code } }
    const schemas = new ScimSchemas();
    schemas.addExtension("User", { id: "urn:example:badge", attributes: [{ name: "badgeNumber", type: "integer" }] });
    console.log(JSON.stringify({
      version: version(),
      good: validateScimFilter('userName Eq "bjensen"'),
      bad,
      ldap: validateLdapFilter("(&(objectClass=person)(uid=jdoe)"),
      canonical: formatScimFilter('userName Eq "bjensen" AND (title pr)'),
      tree: parseScimFilter("title pr"),
      completions: completeScimFilter("user", 4, "User").items.map((i) => i.text),
      extension: schemas.validateScimFilter("badgeNumber gt 5", { resourceType: "User" }),
      thrown, misuse,
    }));
  `);
  const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  assert.equal(out.version, manifest.version);
  assert.deepEqual(out.good, { valid: true, warnings: [] });
  assert.equal(out.bad.valid, false);
  assert.equal(out.bad.error.position, 19);
  assert.deepEqual(out.bad.error.expected, ["attribute", "not", "("]);
  assert.equal(out.ldap.valid, false);
  assert.equal(out.ldap.error.position, 32);
  assert.equal(out.canonical, 'userName eq "bjensen" and title pr');
  assert.deepEqual(out.tree, {
    type: "present",
    path: { text: "title", attribute: "title" },
    start: 0,
    end: 8,
  });
  assert.deepEqual(out.completions, ["userName", "userType"]);
  assert.deepEqual(out.extension, { valid: true, warnings: [] });
  assert.deepEqual(out.thrown, { name: "FilterError", code: "invalidFilter", position: 14, isError: true });
  assert.deepEqual(out.misuse, { name: "UsersyncError", code: "invalidArgument" });
});

test("CommonJS requires the package by name", () => {
  const out = run("check.cjs", `
    const { validateLdapFilter, formatLdapFilter } = require("@usersync/filters");
    console.log(JSON.stringify({
      ok: validateLdapFilter("(cn=Jane*)").valid,
      canonical: formatLdapFilter("  (cn=Jane)  "),
    }));
  `);
  assert.deepEqual(out, { ok: true, canonical: "(cn=Jane)" });
});

test("the package ships types for every entry point", () => {
  const manifest = JSON.parse(readFileSync(join(project, "node_modules/@usersync/filters/package.json"), "utf8"));
  for (const entry of [manifest.types, manifest.exports["./web"].types]) {
    const dts = readFileSync(join(project, "node_modules/@usersync/filters", entry), "utf8");
    assert.match(dts, /export function validateScimFilter\(text: string, options\?: ScimFilterOptions\): ValidationResult;/);
    assert.match(dts, /export interface ValidationError/);
    assert.match(dts, /export function completeScimFilter\(text: string, cursor: number, resourceType: string, options\?: ScimFilterOptions\): Completions;/);
  }
});

test("TypeScript checks the package from ES modules and from CommonJS", () => {
  const tsc = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", ".bin", "tsc");
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
    // The declarations' classes have `[Symbol.dispose]` (wasm-bindgen): TypeScript 5.2 or
    // later, with the disposable library.
    compilerOptions: {
      module: "node16", moduleResolution: "node16", strict: true, noEmit: true, types: [],
      lib: ["es2022", "esnext.disposable"],
    },
    files: ["typed.mts", "typed.cts"],
  }));
  writeFileSync(join(project, "typed.mts"), `
    import { validateScimFilter } from "@usersync/filters";
    const valid: boolean = validateScimFilter('userName eq "a"').valid;
    export { valid };
  `);
  // A CommonJS file gets the CommonJS build's declarations (the ES ones would be TS1479).
  writeFileSync(join(project, "typed.cts"), `
    import filters = require("@usersync/filters");
    const position: number | undefined = filters.validateLdapFilter("(cn=x").error?.position;
    export = position;
  `);
  try {
    execFileSync(tsc, ["-p", project], { cwd: project, encoding: "utf8" });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`);
  }
});
