#!/usr/bin/env python3
"""Upper bound on what template columns could save (issue #15, docs/design.md).

A *template column* would store a string column as `prefix + source + suffix`,
where `source` is a scalar of the same object or of an enclosing one (a string
or an integer) and `prefix` and `suffix` are constant over the column:
`user.url` = "https://api.github.com/users/" + `user.login`,
`comments_url` = `url` + "/comments", `user.avatar_url` =
"https://avatars.githubusercontent.com/u/" + `user.id` + "?v=4". colsnap does
not have them. This script finds the columns that every string of which fits
one template, prints them, and writes a copy of the input with those strings
removed (nulls and other kinds stay). Building both files with `colsnap build`
and comparing them gives the most templates could save, since a real template
column still costs its ids, its table and its footer entries.

Only paths with at least 16 strings averaging at most 256 bytes (the
short-string table) are considered; sources are the non-null, non-bool
scalars of the same object and of its ancestors, tried longest value first
on the path's first string, then checked on every string; a source must not
itself be derived.

    python3 scripts/template_bound.py IN.ndjson OUT.ndjson > derived.txt

Input: NDJSON, one object per line (decompress .zst first).
"""

import collections
import json
import sys


def main(src: str, out: str) -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    # path -> [(visible scalars, string value)] for every string at the path
    occ = collections.defaultdict(list)

    def walk(o, path, ctx):
        if isinstance(o, dict):
            local = {
                path + (k,): v
                for k, v in o.items()
                if not isinstance(v, (dict, list, bool)) and v is not None
            }
            visible = dict(ctx)
            visible.update(local)
            for k, v in o.items():
                p = path + (k,)
                if isinstance(v, (dict, list)):
                    walk(v, p, visible)
                elif isinstance(v, str):
                    occ[p].append((visible, v))
        elif isinstance(o, list):
            for x in o:
                walk(x, path + ("[]",), ctx)

    for r in rows:
        walk(r, (), {})
    derived = {}
    for p in sorted(occ, key=lambda p: (len(p), p)):
        vals = occ[p]
        if len(vals) < 16 or sum(len(v) for _, v in vals) / len(vals) > 256:
            continue
        c0, v0 = vals[0]
        cands = [
            (q, str(x))
            for q, x in c0.items()
            if q != p and q not in derived and str(x) and str(x) in v0
        ]
        cands.sort(key=lambda t: -len(t[1]))
        for q, s in cands:
            i = v0.find(s)
            pre, suf = v0[:i], v0[i + len(s):]
            if all(q in c and pre + str(c[q]) + suf == v for c, v in vals):
                derived[p] = (q, pre, suf)
                break
    for p, (q, a, b) in sorted(derived.items()):
        print(".".join(p), "=", repr(a), "+", ".".join(q), "+", repr(b), len(occ[p]))
    print(f"{len(derived)} derived columns", file=sys.stderr)

    def strip(o, path):
        if isinstance(o, dict):
            return {
                k: strip(v, path + (k,))
                for k, v in o.items()
                if not (path + (k,) in derived and isinstance(v, str))
            }
        if isinstance(o, list):
            return [strip(x, path + ("[]",)) for x in o]
        return o

    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(strip(r, ()), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
