# Load NDJSON issues from stdin into SQLite the way `sqlite-utils insert
# --nl --pk id --alter` does (one column per top-level key, added as keys
# appear; nested values as JSON text; id the primary key), then the indexes
# scripts/bench-serve.sh creates: the Datasette side of the serve benchmark
# in about a minute for 1,000,000 generated issues (sqlite-utils: ~45 min).
#
#   target/release/examples/gen_issues --count 1000000 --seed 42 | python3 scripts/load-sqlite.py issues-1m.db
import sys, json, sqlite3, time
db = sqlite3.connect(sys.argv[1])
db.execute("pragma journal_mode=off"); db.execute("pragma synchronous=off")
t0 = time.time()
cols = None; cset = set(); batch = []; n = 0
def conv(v):
    if isinstance(v, (dict, list)): return json.dumps(v)
    if isinstance(v, bool): return int(v)
    return v
for line in sys.stdin:
    r = json.loads(line)
    if cols is None:
        cols = list(r.keys())
        db.execute("create table issues (%s)" % ", ".join(
            '"%s"%s' % (c, " integer primary key" if c == "id" else "") for c in cols))
        ins = "insert into issues values (%s)" % ",".join("?" * len(cols))
    if not cset: cset.update(cols)
    new = [k for k in r if k not in cset]
    if new:
        if batch: db.executemany(ins, batch); batch = []
        for k in new:
            db.execute('alter table issues add column "%s"' % k); cols.append(k); cset.add(k)
        ins = "insert into issues values (%s)" % ",".join("?" * len(cols))
    batch.append(tuple(conv(r.get(c)) for c in cols)); n += 1
    if len(batch) == 5000:
        db.executemany(ins, batch); batch = []
if batch: db.executemany(ins, batch)
db.commit()
print("rows", n, "loaded in", round(time.time() - t0), "s", file=sys.stderr)
for c in ["title", "created_at", "updated_at", "number", "comments"]:
    db.execute('create index idx_%s on issues ("%s")' % (c, c))
db.execute('create index idx_state_updated on issues (state, updated_at)')
db.commit()
print("indexed in", round(time.time() - t0), "s", file=sys.stderr)
