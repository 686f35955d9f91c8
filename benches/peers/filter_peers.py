"""SCIM filter peer benchmark for the PyPI library scim2-models (0.12.3).

Usage: python filter_peers.py <accept|parse|eval> <workload-dir>   (with the venv's python)
Output: one JSON object per line on stdout; progress and warnings on stderr.

  accept  which filters of parse.json it parses, and how it fares on the non-strict cases of
          corpus.json. The call is the unbound ``ScimFilter(str)``: it parses and checks the
          syntax only (no schema binding, so no attribute or value-type checks).
  parse   parse throughput over common.json with ``ScimFilter(str)``. scim2-models memoises
          parsed filters in an lru_cache, which is cleared before every parse so each one
          is really parsed (the cost of clearing it is included, and negligible).
  eval    per filter of eval.json: build ``ScimFilter[User[EnterpriseUser]](str)`` once (this
          parses and binds it to the schema), convert the users with
          ``User[EnterpriseUser].model_validate`` once (users it rejects are reported on stderr
          and left out), then time ``.match(user)`` over every user.

Timing: ~0.5 s warm-up, then 3 rounds, each repeating whole passes until it lasts at least
1 s; the best round is reported.
"""

import json
import sys
import time
from pathlib import Path

from scim2_models import EnterpriseUser, ScimFilter, User
from scim2_models.path import grammar

PEER = "scim2-models"


def best_rate(one_pass):
    """Passes per second of the best of 3 rounds of at least 1 s, after a 0.5 s warm-up."""
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        one_pass()
    best = 0.0
    for _ in range(3):
        passes, t0 = 0, time.perf_counter()
        while True:
            one_pass()
            passes += 1
            dt = time.perf_counter() - t0
            if dt >= 1:
                break
        best = max(best, passes / dt)
    return best


def accepts(expression):
    try:
        ScimFilter(expression)
        return True
    except Exception:
        return False


def out(obj):
    print(json.dumps(obj), flush=True)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("accept", "parse", "eval"):
        sys.exit("usage: python filter_peers.py <accept|parse|eval> <workload-dir>")
    mode, workdir = sys.argv[1], Path(sys.argv[2])

    def read(name):
        return json.loads((workdir / name).read_text(encoding="utf-8"))

    if mode == "accept":
        filters, corpus = read("parse.json"), read("corpus.json")
        valid = [c["filter"] for c in corpus["valid"] if not c.get("strict")]
        invalid = [c["filter"] for c in corpus["invalid"] if not c.get("strict")]
        out({
            "peer": PEER,
            "accepted": [i for i, s in enumerate(filters) if accepts(s)],
            "valid_accepted": sum(map(accepts, valid)),
            "valid_total": len(valid),
            "invalid_rejected": sum(not accepts(s) for s in invalid),
            "invalid_total": len(invalid),
        })

    elif mode == "parse":
        filters = read("common.json")
        size = sum(len(s.encode("utf-8")) for s in filters)
        clear = grammar._cached_filter.cache_clear

        def one_pass():
            for s in filters:
                clear()
                ScimFilter(s)  # CPython has no dead-code elimination to fear

        print(f"{PEER}: parse", file=sys.stderr)
        rate = best_rate(one_pass)
        out({"peer": PEER, "task": "parse", "filters": len(filters), "bytes": size,
             "filters_per_s": rate * len(filters), "mb_per_s": rate * size / 1e6})

    else:
        workload = read("eval.json")
        model = User[EnterpriseUser]
        users = []
        for i, raw in enumerate(workload["users"]):
            try:
                users.append(model.model_validate(raw))
            except Exception as e:
                first = str(e).splitlines()[1:3]
                print(f"{PEER}: rejects user #{i} ({raw.get('userName')}): {' '.join(first)}",
                      file=sys.stderr)
        bound = ScimFilter[model]
        for expression in workload["filters"]:
            print(f"{PEER}: {expression}", file=sys.stderr)
            try:
                scim_filter = bound(expression)
                match = scim_filter.match
                matches = sum(match(u) for u in users)
            except Exception as e:
                out({"peer": PEER, "task": "eval", "filter": expression,
                     "error": f"{type(e).__name__}: {e}"[:200]})
                continue

            def one_pass():
                n = 0
                for u in users:
                    if match(u):
                        n += 1
                return n

            rate = best_rate(one_pass)
            out({"peer": PEER, "task": "eval", "filter": expression, "users": len(users),
                 "evaluations_per_s": rate * len(users), "matches": matches})


if __name__ == "__main__":
    main()
