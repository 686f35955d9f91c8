// SCIM filter peer benchmark for the npm libraries scim2-parse-filter (0.2.10) and scimmy (1.3.5).
//
// Usage: node filter_peers.mjs <accept|parse|eval> <workload-dir> [--modules <node_modules dir>]
// The packages are looked up in --modules, then in each NODE_PATH entry, then next to this script
// and in the current directory. Output: one JSON object per line on stdout; progress on stderr.
//
//   accept  which filters of parse.json each peer parses without throwing, and how it fares on the
//           non-strict cases of corpus.json (valid ones accepted, invalid ones rejected)
//   parse   parse throughput over common.json (every filter, every pass, nothing cached)
//   eval    per filter of eval.json: parse once, then time evaluating it against every user
//
// Timing: ~0.5 s warm-up, then 3 rounds, each repeating whole passes until it lasts at least 1 s;
// the best round is reported. Results are folded into a sink so the work cannot be dropped.
//
// "Accept"/"parse" calls: scim2-parse-filter `parse(str)`; scimmy `new Types.Filter(str)`.
// "Eval" calls: scim2-parse-filter `filter(parse(str))(user)` per user; scimmy
// `new Filter(str).match(users)`, which takes the whole array (one call per pass).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const at = args.indexOf("--modules");
const modulesOpt = at >= 0 ? args.splice(at, 2)[1] : null;
const [mode, dir] = args;
if (!["accept", "parse", "eval"].includes(mode) || !dir) {
  console.error("usage: node filter_peers.mjs <accept|parse|eval> <workload-dir> [--modules <dir>]");
  process.exit(2);
}

// Find a package directory among the candidate node_modules folders.
const here = path.dirname(fileURLToPath(import.meta.url));
const roots = [modulesOpt, ...(process.env.NODE_PATH ?? "").split(path.delimiter),
  path.join(here, "node_modules"), path.join(process.cwd(), "node_modules")].filter(Boolean);
function packageDir(name) {
  const found = roots.map((r) => path.resolve(r, name)).find((d) => fs.existsSync(path.join(d, "package.json")));
  if (!found) throw new Error(`${name} not found in ${roots.join(", ")}`);
  return found;
}
async function importPeer(name) {
  const pkgDir = packageDir(name);
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  if (pkg.type !== "module") return createRequire(path.join(pkgDir, "package.json"))(pkgDir);
  const entry = pkg.exports?.["."]?.import?.default ?? pkg.exports?.["."]?.import ?? pkg.main;
  return import(pathToFileURL(path.join(pkgDir, entry)).href);
}

const spf = await importPeer("scim2-parse-filter");
const { Filter } = (await importPeer("scimmy")).default.Types;

// Each peer: parse(str) -> compiled form (throws if invalid); sink(compiled) -> number;
// evaluator(compiled, users) -> () => number of users matched (one pass over all users).
const peers = [
  {
    name: "scim2-parse-filter",
    parse: (s) => spf.parse(s),
    sink: (ast) => ast.op.length,
    evaluator: (ast, users) => {
      const pred = spf.filter(ast);
      return () => { let n = 0; for (const u of users) if (pred(u)) n++; return n; };
    },
  },
  {
    name: "scimmy",
    parse: (s) => new Filter(s),
    sink: (f) => f.length,
    evaluator: (f, users) => () => f.match(users).length,
  },
];

const read = (name) => JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => Number(process.hrtime.bigint()) / 1e9;
let sink = 0;

// Runs `pass` (which returns a number to consume) per the protocol; returns the best passes/second.
function bestRate(pass) {
  for (const end = now() + 0.5; now() < end;) sink += pass();
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let passes = 0, t0 = now(), dt;
    do { sink += pass(); passes++; } while ((dt = now() - t0) < 1);
    best = Math.max(best, passes / dt);
  }
  return best;
}

const accepts = (peer, s) => { try { peer.parse(s); return true; } catch { return false; } };

if (mode === "accept") {
  const filters = read("parse.json");
  const corpus = read("corpus.json");
  const valid = corpus.valid.filter((c) => !c.strict);
  const invalid = corpus.invalid.filter((c) => !c.strict);
  for (const peer of peers) {
    out({
      peer: peer.name,
      accepted: filters.flatMap((s, i) => (accepts(peer, s) ? [i] : [])),
      valid_accepted: valid.filter((c) => accepts(peer, c.filter)).length,
      valid_total: valid.length,
      invalid_rejected: invalid.filter((c) => !accepts(peer, c.filter)).length,
      invalid_total: invalid.length,
    });
  }
} else if (mode === "parse") {
  const filters = read("common.json");
  const bytes = filters.reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
  for (const peer of peers) {
    console.error(`${peer.name}: parse`);
    const perSecond = bestRate(() => { let n = 0; for (const s of filters) n += peer.sink(peer.parse(s)); return n; });
    out({ peer: peer.name, task: "parse", filters: filters.length, bytes,
      filters_per_s: perSecond * filters.length, mb_per_s: (perSecond * bytes) / 1e6 });
  }
} else {
  const { filters, users } = read("eval.json");
  for (const peer of peers) {
    for (const filter of filters) {
      console.error(`${peer.name}: ${filter}`);
      try {
        const pass = peer.evaluator(peer.parse(filter), users);
        const matches = pass();
        const perSecond = bestRate(pass);
        out({ peer: peer.name, task: "eval", filter, users: users.length,
          evaluations_per_s: perSecond * users.length, matches });
      } catch (e) {
        out({ peer: peer.name, task: "eval", filter, error: String(e?.message ?? e).slice(0, 200) });
      }
    }
  }
}
console.error(`sink ${sink}`);
