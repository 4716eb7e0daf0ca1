"""A wide, sparse export for build-time measurements (docs/design.md,
"Repetitive sections at level 9"): ROWS rows of an `id` and 10 of KEYS keys
chosen at random, values of random kinds. Fixed seed.

    python3 scripts/gen-sparse.py 3000 20000 sparse.ndjson
"""
import json, random, sys
random.seed(7)
rows=int(sys.argv[1]); keys=int(sys.argv[2])
out=open(sys.argv[3],'w')
for i in range(rows):
    r={"id":i+1}
    for k in random.sample(range(keys),10):
        t=random.randrange(5)
        v=[random.randrange(1000), "s%d"%random.randrange(500), random.random()<.5, None, [random.randrange(9)]][t]
        r["k%05d"%k]=v
    out.write(json.dumps(r)+"\n")
