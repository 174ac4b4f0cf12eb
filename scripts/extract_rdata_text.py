#!/usr/bin/env python3
# Prints character vectors stored in an R lazy-load database (a package's data/Rdata.rdb + .rdx)
# as UTF-8 text, one vector element per line, a blank line between vectors, in the order the
# names are given. scripts/get_data.sh uses it to take Jane Austen's six novels out of Debian's
# r-cran-janeaustenr without installing R; `--list` prints the names in the index instead.
#
# It is a reader for just the subset of R's serialization format that such data needs, written
# from the format's description: the XDR format ("X\n", versions 2 and 3), character vectors
# (with NA_STRING and their UTF-8 / Latin-1 / ASCII / native encoding marks; Latin-1 strings are
# converted to UTF-8), and the lists, pairlists, symbols, attributes and integer / logical / double
# vectors that the index is made of. It is not a general R reader: the ASCII and native binary
# formats, environments, closures, language objects, ALTREP, bytes-encoded strings, and bzip2 or
# xz compressed databases are refused, as is any object asked for that is not a character vector.
# Anything unexpected ends it with one error line naming the file and non-zero exit status.
#
# Usage: extract_rdata_text.py PATH/Rdata[.rdb|.rdx] NAME...   |   ... PATH/Rdata --list
# Only the Python 3 standard library is used (it runs under Debian's /usr/bin/python3).
import gzip
import struct
import sys
import zlib

# SEXPTYPEs and the serializer's pseudo types.
NILSXP, SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 0, 1, 2, 9, 10, 13, 14, 16, 19
ALTREP_SXP, ATTRLISTSXP, REFSXP, NILVALUE_SXP = 238, 239, 255, 254
TYPE_NAMES = {0: "NULL", 1: "symbol", 2: "pairlist", 3: "closure", 4: "environment", 5: "promise",
              6: "language", 7: "special", 8: "builtin", 9: "CHARSXP", 10: "logical", 13: "integer",
              14: "double", 15: "complex", 16: "character", 17: "...", 19: "list", 20: "expression",
              21: "bytecode", 22: "external pointer", 23: "weak reference", 24: "raw", 25: "S4",
              238: "ALTREP", 239: "attributed pairlist", 240: "attributed language", 241: "base env",
              242: "empty env", 247: "persistent ref", 248: "package env", 249: "namespace",
              250: "base namespace", 251: "missing arg", 252: "unbound value", 253: "global env",
              254: "NULL", 255: "reference"}
IS_OBJECT, HAS_ATTR, HAS_TAG = 1 << 8, 1 << 9, 1 << 10
# CHARSXP levels (flags >> 12).
BYTES_MASK, LATIN1_MASK, UTF8_MASK, ASCII_MASK = 1 << 1, 1 << 2, 1 << 3, 1 << 6
NA_INTEGER = -(2 ** 31)


class Fail(Exception):
    pass


class Symbol:
    def __init__(self, name):
        self.name = name


class RVector(list):
    """An R vector (or a pairlist turned into one): its elements, its SEXPTYPE, its attributes."""

    def __init__(self, sexptype, items, attrs=None):
        super().__init__(items)
        self.sexptype = sexptype
        self.attrs = attrs or {}

    def names(self):
        n = self.attrs.get("names")
        return list(n) if n is not None else None


def type_name(t):
    return TYPE_NAMES.get(t, f"type {t}")


class Unserializer:
    """Reads one R serialization stream in XDR format."""

    def __init__(self, data):
        self.d, self.p, self.refs = data, 0, []
        self.native = "utf-8"  # version 2 streams do not say; strings R did not mark are read as UTF-8

    def take(self, n):
        if self.p + n > len(self.d):
            raise Fail(f"the serialized object ends early (wanted {n} bytes at offset {self.p}, "
                       f"found {len(self.d) - self.p})")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # a long vector: two more ints, upper and lower halves
            hi, lo = struct.unpack(">II", self.take(8))
            n = (hi << 32) | lo
        if n < 0:
            raise Fail(f"expected a vector length, found {n}")
        return n

    def header(self):
        magic = self.take(2)
        if magic != b"X\n":
            fmt = {b"A\n": "ASCII", b"B\n": "native binary"}.get(magic, repr(magic))
            raise Fail(f"expected an R serialization stream in XDR format (b'X\\n'), found {fmt}")
        version = self.int()
        self.int(), self.int()  # the R version that wrote it, the oldest one that can read it
        if version == 3:
            enc = self.take(self.int()).decode("ascii", "replace")
            self.native = {"utf-8": "utf-8", "utf8": "utf-8", "latin1": "latin-1",
                           "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}.get(enc.lower())
            if self.native is None:
                raise Fail(f"expected native encoding UTF-8 or latin1, found {enc!r}")
        elif version != 2:
            raise Fail(f"expected serialization version 2 or 3, found {version}")

    def attributes(self, flags):
        if not flags & HAS_ATTR:
            return {}
        attrs = self.item()
        if not isinstance(attrs, RVector) or attrs.sexptype != LISTSXP:
            raise Fail("expected an attribute pairlist")
        return {tag: v for tag, v in zip(attrs.attrs["tags"], attrs)}

    def charsxp(self, flags):
        n = self.int()
        if n == -1:
            return None  # NA_STRING
        raw = self.take(n)
        levels = flags >> 12
        if levels & BYTES_MASK:
            raise Fail("expected text, found a string marked as bytes")
        enc = "utf-8" if levels & UTF8_MASK else "latin-1" if levels & LATIN1_MASK else \
            "ascii" if levels & ASCII_MASK else self.native
        try:
            return raw.decode(enc)
        except UnicodeDecodeError as e:
            raise Fail(f"expected a string in {enc}, found bytes that are not ({e.reason} at {e.start})")

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        if t == NILVALUE_SXP:
            return None
        if t == REFSXP:
            i = flags >> 8 or self.int()
            if not 1 <= i <= len(self.refs):
                raise Fail(f"expected a back reference within 1..{len(self.refs)}, found {i}")
            return self.refs[i - 1]
        if t == SYMSXP:
            name = self.item()
            if not isinstance(name, str):
                raise Fail("expected a symbol's name")
            sym = Symbol(name)
            self.refs.append(sym)
            return sym
        if t in (LISTSXP, ATTRLISTSXP):
            # A pairlist, read along its CDRs: per cell [attributes] [tag] CAR, then the next cell.
            tags, cars = [], []
            while True:
                self.attributes(flags)  # attributes on a pairlist cell: read and dropped
                tag = self.item() if flags & HAS_TAG else None
                tags.append(tag.name if isinstance(tag, Symbol) else None)
                cars.append(self.item())
                flags = self.int()
                if flags & 0xFF == NILVALUE_SXP:
                    break
                if flags & 0xFF not in (LISTSXP, ATTRLISTSXP):
                    raise Fail(f"expected a pairlist cell or its end, found {type_name(flags & 0xFF)}")
            return RVector(LISTSXP, cars, {"tags": tags})
        if t == CHARSXP:
            return self.charsxp(flags)
        if t in (LGLSXP, INTSXP):
            n = self.length()
            vals = [None if v == NA_INTEGER else v for v in struct.unpack(f">{n}i", self.take(4 * n))]
            if t == LGLSXP:
                vals = [None if v is None else bool(v) for v in vals]
            return RVector(t, vals, self.attributes(flags))
        if t == REALSXP:
            n = self.length()
            return RVector(t, struct.unpack(f">{n}d", self.take(8 * n)), self.attributes(flags))
        if t == STRSXP:
            n = self.length()
            vals = []
            for _ in range(n):
                f = self.int()
                if f & 0xFF != CHARSXP:
                    raise Fail(f"expected a CHARSXP in a character vector, found {type_name(f & 0xFF)}")
                vals.append(self.charsxp(f))
            return RVector(t, vals, self.attributes(flags))
        if t == VECSXP:
            n = self.length()
            vals = [self.item() for _ in range(n)]
            return RVector(t, vals, self.attributes(flags))
        raise Fail(f"expected a character vector (or the index's lists and vectors), "
                   f"found an R object of type {type_name(t)} ({t}), which this reader does not handle")

    def read(self):
        self.header()
        obj = self.item()
        if self.p != len(self.d):
            raise Fail(f"expected the stream to end after one object, found {len(self.d) - self.p} more bytes")
        return obj


def inflate(blob, what):
    """A database entry: a 4-byte big-endian length, then a zlib stream of that many bytes."""
    if len(blob) < 5:
        raise Fail(f"{what}: expected a length and a compressed stream, found {len(blob)} bytes")
    n = struct.unpack(">I", blob[:4])[0]
    kind = blob[4]
    if kind & 0x0F != 8:  # a zlib stream's first byte says deflate (0x78 usually)
        known = {ord("Z"): "xz", ord("2"): "bzip2", ord("X"): "an XDR stream", ord("0"): "uncompressed"}
        raise Fail(f"{what}: expected a zlib stream, found type byte {chr(kind)!r} "
                   f"({known.get(kind, 'unknown')}); only zlib-compressed databases are supported")
    try:
        data = zlib.decompress(blob[4:])
    except zlib.error as e:
        raise Fail(f"{what}: expected a zlib stream, found one that does not inflate ({e})")
    if len(data) != n:
        raise Fail(f"{what}: expected {n} bytes after inflating, found {len(data)}")
    return data


def read_index(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":  # saveRDS's default: a gzip file
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise Fail(f"expected a gzip file, found a broken one ({e})")
    elif raw[:2] == b"X\n":
        data = raw
    elif raw[:3] == b"BZh" or raw[:6] == b"\xfd7zXZ\x00":
        raise Fail("expected a gzip or zlib compressed index, found bzip2 or xz; only zlib is supported")
    elif len(raw) > 4 and raw[4] & 0x0F == 8:
        data = inflate(raw, "index")
    else:
        raise Fail(f"expected an R lazy-load index (a gzip file, an XDR stream, or a length and a "
                   f"zlib stream), found bytes starting {raw[:6]!r}")
    idx = Unserializer(data).read()
    names = idx.names() if isinstance(idx, RVector) and idx.sexptype == VECSXP else None
    if not names or "variables" not in names:
        raise Fail("expected the index to be a list with a 'variables' element")
    compressed = idx[names.index("compressed")] if "compressed" in names else None
    if compressed is not None and list(compressed) not in ([True], [1]):
        raise Fail(f"expected a zlib-compressed database (compressed = TRUE), found compressed = "
                   f"{list(compressed)} (2: bzip2, 3: xz); only zlib is supported")
    variables = idx[names.index("variables")]
    vnames = variables.names() if isinstance(variables, RVector) else None
    if vnames is None or len(vnames) != len(variables):
        raise Fail("expected the index's 'variables' to be a named list")
    table = {}
    for name, where in zip(vnames, variables):
        if not isinstance(where, RVector) or where.sexptype not in (INTSXP, REALSXP) or len(where) != 2:
            raise Fail(f"expected an (offset, length) pair for {name!r} in the index")
        table[name] = (int(where[0]), int(where[1]))
    return table


def main(argv):
    if len(argv) < 2:
        print("usage: extract_rdata_text.py PATH/Rdata[.rdb|.rdx] NAME... | --list", file=sys.stderr)
        return 2
    base = argv[0]
    for ext in (".rdb", ".rdx"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    rdx, rdb = base + ".rdx", base + ".rdb"
    current = rdx
    try:
        table = read_index(rdx)
        if argv[1:] == ["--list"]:
            for name, (off, n) in table.items():
                print(f"{name}\t{off}\t{n}")
            return 0
        current = rdb
        out = sys.stdout.buffer
        with open(rdb, "rb") as f:
            for i, name in enumerate(argv[1:]):
                if name not in table:
                    current = rdx
                    raise Fail(f"expected an object named {name!r} in the index, found only: "
                               f"{', '.join(sorted(table))}")
                off, n = table[name]
                f.seek(off)
                blob = f.read(n)
                if len(blob) != n:
                    raise Fail(f"{name}: expected {n} bytes at offset {off}, found {len(blob)}")
                try:
                    obj = Unserializer(inflate(blob, name)).read()
                except Fail as e:
                    raise Fail(str(e) if str(e).startswith(name + ":") else f"{name}: {e}")
                if not isinstance(obj, RVector) or obj.sexptype != STRSXP:
                    found = type_name(obj.sexptype) if isinstance(obj, RVector) else "NULL or a symbol"
                    raise Fail(f"{name}: expected a character vector, found {found}")
                if i:
                    out.write(b"\n")
                # NA_STRING elements are printed as empty lines.
                out.write("".join((s or "") + "\n" for s in obj).encode("utf-8"))
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): not an error of ours
        return 0
    except OSError as e:
        print(f"extract_rdata_text: {e.filename or current}: {e.strerror or e}", file=sys.stderr)
        return 1
    except Fail as e:
        print(f"extract_rdata_text: {current}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
