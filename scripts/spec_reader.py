#!/usr/bin/env python3
"""A second colsnap reader, written from SPEC.md alone (sections 1.5 and 2-7), that
checks the spec against the conformance files: it exports each file given and
compares the result with its expected NDJSON (fixtures/conformance/README.md).

    python3 scripts/spec_reader.py fixtures/conformance/*.colsnap fixtures/conformance/v2/*.colsnap

Reads format versions 1 (framed, 8-aligned sections), 2 (sections without frames,
zstd payloads without the frame magic), 3 (version 2 with inline sections in the
footer), 4 (version 3 with the footer's nodes field by field) and 5 (version 4 plus
integers kept as text, kind 11); SPEC.md sections 1.3, 2, 3, 4.10, 5.3, 5.4 and 8.

Needs Python 3, the `zstd` command (for zstd sections and footers) and, for PPMd sections
(codec 3), the `pyppmd` package (`pip install pyppmd`). Slow
(pure Python CRC-32C) and without the hostile-input checks of SPEC.md section 10:
a specification check, not a library."""
import gzip, json, struct, subprocess, sys, os, tempfile

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF

class R:
    def __init__(s, b): s.b, s.p = b, 0
    def u8(s): v = s.b[s.p]; s.p += 1; return v
    def var(s):
        v, sh = 0, 0
        while True:
            x = s.u8(); v |= (x & 0x7F) << sh; sh += 7
            if not x & 0x80: return v
    def zz(s):
        u = s.var(); return (u >> 1) ^ -(u & 1)
    def take(s, n): v = s.b[s.p:s.p+n]; s.p += n; return v
    def done(s): return s.p == len(s.b)

ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'

def decompress(codec, data, raw_len, dic=None, bare=False):
    # bare: a version 2 zstd payload, stored without the frame's magic
    if codec == 2 and bare: data = ZSTD_MAGIC + data
    if codec == 0: out = data
    elif codec == 1: out = gzip.decompress(data)
    elif codec == 3:
        # PPMd variant H with 7-Zip's range coder (section 3): order, model memory, stream.
        import pyppmd
        order, mem = data[0], struct.unpack_from('<I', data, 1)[0]
        assert 2 <= order <= 64 and 2048 <= mem <= 1 << 28, (order, mem)
        out = pyppmd.Ppmd7Decoder(order, mem).decode(data[5:], raw_len)
    elif codec == 2:
        with tempfile.TemporaryDirectory() as d:
            open(d+'/f.zst','wb').write(data)
            cmd = ['zstd','-q','-d','-c',d+'/f.zst']
            if dic is not None:
                open(d+'/dict','wb').write(dic); cmd += ['-D', d+'/dict']
            out = subprocess.run(cmd, capture_output=True, check=True).stdout
    else: raise ValueError('unknown codec %d' % codec)
    assert len(out) == raw_len, (len(out), raw_len)
    return out

def wrap(v): return v - (1 << 64) if v >= 1 << 63 else v

def stats(r, nd, v4):
    """5.3 `distinct` and STATS (read past: the export does not need them); v4 stores
    each min with a span (a varint) instead of the max."""
    nd['distinct'] = r.var()
    if 4 in nd['counts']: r.zz(); r.var() if v4 else r.zz()
    if 5 in nd['counts']: r.var(); r.var()
    if 6 in nd['counts']: r.take(16)
    if 7 in nd['counts']:  # string ids: they fit u32
        lo, hi = r.var(), r.var(); assert lo < 1 << 32 and hi < 1 << 32
    if 8 in nd['counts']: r.zz(); r.var() if v4 else r.zz()

class Snap:
    def __init__(s, b):
        s.b = b
        assert b[:8] == b'COLSNAP\0'
        s.version, fl, rs = struct.unpack_from('<HHI', b, 8)
        assert s.version in (1, 2, 3, 4, 5) and fl == 0 and rs == 0
        # kind 11 (NumText) and its stream (role 11) exist from version 5 on (1.3, 4.10)
        s.kinds_max, s.streams_max = (12, 11) if s.version >= 5 else (11, 10)
        v2 = s.version >= 2  # v3 and v4 lay out their file sections as v2 does
        t = b[-32:]
        assert t[28:] == b'CSNP' and struct.unpack_from('<I', t, 24)[0] == crc32c(t[:24])
        off, sl, rl, fcrc, codec, rsv, ver = struct.unpack_from('<QIIIBBH', t, 0)
        assert rsv == 0 and ver == s.version and off + sl == len(b) - 32
        fb = b[off:off+sl]; assert crc32c(fb) == fcrc
        r = R(decompress(codec, fb, rl, bare=v2))
        s.rows = r.var()
        n = r.var(); offs = []; o = 0
        for _ in range(n): o += r.var(); offs.append(o)
        st = [r.var() for _ in range(n)]; raw = [r.var() for _ in range(n)]
        cod = list(r.take(n)); enc = list(r.take(n)); role = list(r.take(n))
        crc = [struct.unpack_from('<I', r.take(4))[0] for _ in range(n)]
        # s.sec: (payload offset, stored_len, raw_len, codec, encoding, role, crc)
        s.sec = []
        end = 16
        for (o, st_, rw, c, e, ro, cr) in zip(offs, st, raw, cod, enc, role, crc):
            assert o == end
            if v2:  # the section is its payload: no frame, no padding
                assert st_ > 0; p = o; end = o + st_
            else:   # a 16-byte frame equal to the entry, the payload, zero padding to 8
                ln = 16 + st_; end = o + ln + (-ln % 8); p = o + 16
                fr = struct.unpack_from('<BBBBIII', b, o)
                assert fr == (c, e, ro, 0, rw, st_, cr), (fr, (c, e, ro, rw, st_, cr))
                assert set(b[p+st_:end]) <= {0}
            assert crc32c(b[p:p+st_]) == cr
            s.sec.append((p, st_, rw, c, e, ro, cr))
        assert end == off
        s.inline = []
        if s.version >= 3:  # 5.4: inline sections, numbered after these, payloads at the footer's end
            m = r.var(); iraw = [r.var() for _ in range(m)]
            ienc = list(r.take(m)); irole = list(r.take(m))
            assert all(1 <= ro <= s.streams_max and rw > 0 for ro, rw in zip(irole, iraw))
            s.inline = list(zip(iraw, ienc, irole))
        s.tables = []
        for _ in range(r.var()):
            fl = r.u8(); ns = r.var(); nc = r.var(); fc = r.var()
            cc = [r.var() for _ in range(nc)]; ix = r.var(); dc = r.var()
            # flags: bit 0 long text, bit 1 front-coded, bit 2 row order (7.6: no index,
            # ids need not order like strings; reading a string by id is the same)
            assert fl & ~7 == 0, fl
            assert sum(cc) == ns and (ix != 0) == (nc >= 2 and not fl & 4), (fl, nc, ix)
            s.tables.append(dict(flags=fl, n=ns, first=fc, counts=cc, index=ix-1 if ix else None, dict=dc-1 if dc else None))
        s.nodes = []
        nn = r.var(); assert 1 <= nn <= 1 << 20  # 10.1
        if s.version >= 4:  # 5.3 NODES_V4: field by field, each over every node
            s.nodes = [dict() for _ in range(nn)]
            for i in range(1, nn):
                d = r.var(); assert 1 <= d <= i; s.nodes[i]['parent'] = i - d
            for nd in s.nodes[1:]:
                tag = r.u8(); nd['key'] = r.take(r.var()).decode() if tag == 1 else None
            for nd in s.nodes: nd['items'] = r.var()
            masks = [r.var() for _ in range(nn)]
            assert all(km >> s.kinds_max == 0 for km in masks)
            for nd, km in zip(s.nodes, masks): nd['counts'] = {k: r.var() for k in range(12) if km >> k & 1}
            masks = [r.var() for _ in range(nn)]
            assert all(sm >> s.streams_max == 0 for sm in masks)
            prev = 0
            for nd, sm in zip(s.nodes, masks):
                nd['streams'] = {}
                for k in range(11):
                    if sm >> k & 1: prev += r.zz(); nd['streams'][k] = prev
            for nd in s.nodes:
                if 7 in nd['counts']: nd['table'] = r.var()
            for nd in s.nodes:
                if 8 in nd['counts'] and 7 not in nd['streams']: nd['layout'] = r.u8()
            for nd in s.nodes: stats(r, nd, True)  # each present kind's min and span
        for i in range(nn if s.version < 4 else 0):
            nd = {}
            if i: 
                nd['parent'] = r.var(); tag = r.u8()
                nd['key'] = r.take(r.var()).decode() if tag == 1 else None
            nd['items'] = r.var(); km = r.var()
            nd['counts'] = {k: r.var() for k in range(12) if km >> k & 1}
            sm = r.var(); nd['streams'] = {k: r.var() for k in range(11) if sm >> k & 1}
            if 7 in nd['counts']: nd['table'] = r.var()
            if 8 in nd['counts'] and 7 not in nd['streams']: nd['layout'] = r.u8()
            stats(r, nd, False)
            s.nodes.append(nd)
        for (rw, e, ro) in s.inline:  # raw payloads, covered by the footer's CRC
            s.sec.append((None, rw, rw, 0, e, ro, r.take(rw)))
        assert r.done()
        for i, nd in enumerate(s.nodes):
            nd['children'] = [j for j, m in enumerate(s.nodes) if j and m['parent'] == i]
            nd['domain'] = i if i == 0 or nd['key'] is None else s.nodes[nd['parent']]['domain']
        s.cache = {}; s.chunks = {}

    def section(s, i, dic=None):
        p, st, rw, c, e, ro, cr = s.sec[i]
        if p is None: return e, cr  # inline (v3): cr holds the raw payload
        return e, decompress(c, s.b[p:p+st], rw, dic, bare=s.version >= 2)

    def values(s, e, raw, count, kind):  # kind: 'u', 'i', 'u8'
        r = R(raw)
        if e == 1: v = [r.var() for _ in range(count)]
        elif e == 2: v = [r.zz() for _ in range(count)]
        elif e == 3:
            v, p = [], 0
            for _ in range(count): p = wrap((p + r.zz()) % (1 << 64)); v.append(p)
        elif e == 4: v = list(struct.unpack_from('<%dI' % count, raw)); r.p = 4*count
        elif e == 5: v = list(struct.unpack_from('<%dd' % count, raw)); r.p = 8*count
        elif e == 7: v = list(raw); r.p = count
        elif e == 6:
            P = r.u8() or 256; pal = r.take(P); w = (P-1).bit_length() if P > 1 else 0
            bits = int.from_bytes(r.take((count*w+7)//8), 'little')
            v = [pal[(bits >> (i*w)) & ((1 << w)-1)] for i in range(count)]
        elif e == 8:
            n = r.var(); keys = []
            for k in range(n): keys.append(r.var() if k == 0 else keys[-1] + r.var())
            wd = 0 if n <= 1 else 1 if n <= 256 else 2 if n <= 65536 else 3 if n <= 1 << 24 else 4
            v = []
            for _ in range(count):
                v.append(keys[int.from_bytes(r.take(wd), 'little')] if wd else keys[0])
            if kind == 'i': v = [wrap(k ^ (1 << 63)) for k in v]
        else: raise Exception('encoding %d' % e)
        assert r.done(), (e, len(raw), r.p)
        return v

    def kinds(s, i):
        nd = s.nodes[i]
        if 0 not in nd['streams']:
            return [next(iter(nd['counts']), 0)] * nd['items']
        e, raw = s.section(nd['streams'][0])
        if e != 9: return s.values(e, raw, nd['items'], 'u8')
        pk = s.kinds(nd['parent'])
        under = s.values(6, raw, sum(1 for k in pk if k == 9), 'u8')
        it = iter(under); return [next(it) if k == 9 else 0 for k in pk]

    def node(s, i):
        if i in s.cache: return s.cache[i]
        nd = s.nodes[i]; kinds = s.kinds(i); cnt = nd['counts']
        d = {'kinds': kinds}
        def load(stream, kind, count):
            e, raw = s.section(nd['streams'][stream])
            if e == 10:
                r = R(raw); src = r.var(); n = r.var(); keys = []
                for k in range(n): keys.append(r.var() if k == 0 else keys[-1] + r.var())
                vals, p = [], 0
                for _ in range(n): p = wrap((p + r.zz()) % (1 << 64)); vals.append(p)
                assert r.done()
                sd = s.node(src); m = dict(zip(keys, vals)); want = 4 if stream == 1 else 7
                return [m[sd['str'][sd['rank'][it]]] for it, k in enumerate(kinds) if k == want]
            if e == 11:  # based (4.9): the source's payload at the same item plus a delta
                r = R(raw); src = r.var(); ds = [r.zz() for _ in range(count)]
                assert r.done()
                want, field = {1: (4, 'int'), 4: (7, 'str'), 5: (8, 'secs')}[stream]
                sd = s.node(src); it = iter(ds)
                return [sd[field][sd['rank'][j]] + next(it) for j, k in enumerate(kinds) if k == want]
            return s.values(e, raw, count, kind)
        rank, seen = [], {}
        for k in kinds: rank.append(seen.get(k, 0)); seen[k] = seen.get(k, 0) + 1
        d['rank'] = rank
        d['int'] = load(1, 'i', cnt[4]) if 1 in nd['streams'] else []
        d['uint'] = load(2, 'u', cnt[5]) if 2 in nd['streams'] else []
        d['float'] = load(3, 'f', cnt[6]) if 3 in nd['streams'] else []
        d['str'] = load(4, 'u', cnt[7]) if 4 in nd['streams'] else []
        # string ids are u32 whatever their encoding (4.2: a delta-zigzag
        # stream's running values too)
        assert all(0 <= x < 1 << 32 for x in d['str']), 'string id out of range'
        nt = cnt.get(8, 0)
        if nt:
            d['secs'] = load(5, 'i', nt)
            d['nanos'] = load(6, 'u', nt) if 6 in nd['streams'] else [0]*nt
            d['layout'] = load(7, 'u8', nt) if 7 in nd['streams'] else [nd['layout']]*nt
            d['off'] = load(8, 'i', nt) if 8 in nd['streams'] else [0]*nt
        lens = load(9, 'u', cnt[10]) if 9 in nd['streams'] else []
        d['numtext'] = []
        if 10 in nd['streams']:  # 4.10: raw, each text a length and its ASCII digits
            e, raw = s.section(nd['streams'][10]); assert e == 0
            r = R(raw)
            for _ in range(cnt[11]):
                t = r.take(r.var()).decode('ascii'); digits = t.lstrip('-')
                assert digits.isdigit() and digits[0] != '0' and t.count('-') <= 1, t
                assert not (-(1 << 63) <= int(t) < 1 << 64), t  # outside every other kind
                d['numtext'].append(t)
            assert r.done()
        starts = [0]
        for l in lens: starts.append(starts[-1] + l)
        d['starts'] = starts
        s.cache[i] = d; return d

    def string(s, t, sid):
        tb = s.tables[t]; k, start = 0, 0
        while start + tb['counts'][k] <= sid: start += tb['counts'][k]; k += 1
        key = (t, k)
        if key not in s.chunks:
            dic = s.section(tb['dict'])[1] if tb['dict'] is not None else None
            p, st, rw, c, e, ro, cr = s.sec[tb['first'] + k]
            raw = decompress(c, s.b[p:p+st], rw, dic if c == 2 else None, bare=s.version >= 2)
            r = R(raw); out = []
            for _ in range(tb['counts'][k]):
                if tb['flags'] & 2:
                    sh = r.var(); out.append((out[-1][:sh] if out else b'') + r.take(r.var()))
                else: out.append(r.take(r.var()))
            assert r.done(); s.chunks[key] = [x.decode() for x in out]
        return s.chunks[key][sid - start]

def fmt_float(x):
    if x == 0: return '-0.0' if struct.pack('>d', x)[0] & 0x80 else '0.0'
    sign = '-' if x < 0 else ''
    r = repr(abs(x))  # shortest round-trip digits
    mant, _, ex = r.partition('e'); ex = int(ex or 0)
    ip, _, fp = mant.partition('.'); fp = '' if fp == '0' else fp
    # value = int(ip+fp) * 10^(ex - len(fp)); strip trailing zeros
    m = int(ip + fp); k = ex - len(fp)
    while m % 10 == 0: m //= 10; k += 1
    ds = str(m); ln = len(ds); kk = ln + k
    if 0 <= k and kk <= 16: out = ds + '0'*k + '.0'
    elif 0 < kk <= 16: out = ds[:kk] + '.' + ds[kk:]
    elif -5 < kk <= 0: out = '0.' + '0'*(-kk) + ds
    else:
        e = kk - 1; es = ('+' if e >= 0 else '-') + str(abs(e))
        out = (ds if ln == 1 else ds[0] + '.' + ds[1:]) + 'e' + es
    return sign + out

import datetime
def fmt_time(secs, nanos, layout, off):
    d, st = layout % 10, layout // 10
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=secs + off*60)
    s = '%04d-%02d-%02dT%02d:%02d:%02d' % (t.year, t.month, t.day, t.hour, t.minute, t.second)
    if d: s += '.' + ('%09d' % nanos)[:d]
    a = abs(off); sg = '+' if off >= 0 else '-'
    s += ['Z', '%s%02d:%02d' % (sg, a//60, a%60), '%s%02d%02d' % (sg, a//60, a%60), '-00:00', '-0000'][st]
    return s

def jstr(s):
    out = '"'
    for ch in s:
        o = ord(ch)
        if ch == '"': out += '\\"'
        elif ch == '\\': out += '\\\\'
        elif ch in '\b\f\n\r\t': out += {'\b':'\\b','\f':'\\f','\n':'\\n','\r':'\\r','\t':'\\t'}[ch]
        elif o < 0x20: out += '\\u%04x' % o
        else: out += ch
    return out + '"'

def item(sn, i, it):
    d = sn.node(i); nd = sn.nodes[i]; k = d['kinds'][it]; p = d['rank'][it]
    if k == 1: return 'null'
    if k == 2: return 'false'
    if k == 3: return 'true'
    if k == 4: return str(d['int'][p])
    if k == 5: return str(d['uint'][p])
    if k == 6: return fmt_float(d['float'][p])
    if k == 7: return jstr(sn.string(nd['table'], d['str'][p]))
    if k == 11: return d['numtext'][p]
    if k == 8: return jstr(fmt_time(d['secs'][p], d['nanos'][p], d['layout'][p], d['off'][p]))
    if k == 9:
        parts = []
        for c in nd['children']:
            if sn.nodes[c]['key'] is None: continue
            if sn.node(c)['kinds'][it] != 0:
                parts.append(jstr(sn.nodes[c]['key']) + ':' + item(sn, c, it))
        return '{' + ','.join(parts) + '}'
    if k == 10:
        el = [c for c in nd['children'] if sn.nodes[c]['key'] is None][0]
        return '[' + ','.join(item(sn, el, j) for j in range(d['starts'][p], d['starts'][p+1])) + ']'
    raise Exception('kind %d' % k)

if __name__ == '__main__':
    ok = True
    for f in sys.argv[1:]:
        sn = Snap(open(f, 'rb').read())
        out = ''.join(item(sn, 0, r) + '\n' for r in range(sn.rows))
        stem = os.path.basename(f)[:-len('.colsnap')]
        if stem.startswith('all-') or stem == 'ids-plain-gzip': stem = 'all'
        if stem == 'long-text-ppmd': stem = 'long-text-rows'  # same input, PPMd chunks
        d = os.path.dirname(f)
        if stem.startswith('num-text-'): stem = 'num-text'  # one input, three codecs
        if os.path.basename(d) in ('v2', 'v3', 'v4', 'v5'): d = os.path.dirname(d)  # the twins share the inputs
        exp_path = os.path.join(d, stem + '.expected.ndjson')
        if not os.path.exists(exp_path):  # golden: v5 has its own input, exported exactly
            exp_path = os.path.join(d, 'v5-input.ndjson' if stem == 'v5' else 'v1-expected.ndjson')
        exp = open(exp_path).read()
        print(f, 'OK' if out == exp else 'MISMATCH'); ok &= out == exp
        if out != exp:
            for a, b in zip(out.splitlines(), exp.splitlines()):
                if a != b: print(' got', a[:300]); print(' exp', b[:300]); break
    sys.exit(0 if ok else 1)
