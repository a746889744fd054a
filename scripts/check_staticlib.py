#!/usr/bin/env python3
"""Checks a cross-compiled static library of tessera-ffi without any target
toolchain: reads the archive's symbol index (GNU `/` and `/SYM64/`, BSD
`__.SYMDEF` and `__.SYMDEF SORTED`, 32 and 64 bit) and the headers of its
object files (ELF, Mach-O), then checks

  * every object file is of the expected format and machine (so an archive
    built for the wrong target fails), and
  * the UniFFI symbols it exports (names starting `uniffi_` or `ffi_tessera`)
    are exactly those of the reference archive (the host build): a missing
    one is a function the generated Kotlin or Swift would not find.

    check_staticlib.py REFERENCE.a TARGET.a MACHINE

MACHINE: elf-aarch64, elf-arm, elf-x86_64, macho-arm64, macho-x86_64.
Exit status 0 when all holds, 1 (with the reasons) otherwise.
"""
import struct
import sys

ELF_MACHINES = {"elf-aarch64": 183, "elf-arm": 40, "elf-x86_64": 62}
MACHO_CPUS = {"macho-arm64": 0x0100000C, "macho-x86_64": 0x01000007}
PREFIXES = ("uniffi_", "ffi_tessera")


def members(data):
    """(name, payload) of every member of an ar archive (GNU or BSD names)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos, longnames = 8, b""
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"bad member header at {pos}")
        name = header[0:16].decode("ascii", "replace").rstrip()
        size = int(header[48:58].decode("ascii").strip())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("#1/"):  # BSD: the name follows the header
            n = int(name[3:])
            name, body = body[:n].rstrip(b"\0").decode("utf-8", "replace"), body[n:]
        elif name == "//":  # GNU long-name table
            longnames = body
        elif name.startswith("/") and name[1:].isdigit():
            off = int(name[1:])
            name = longnames[off:longnames.index(b"\n", off)].decode("utf-8", "replace").rstrip("/")
        yield name, body
        pos += 60 + size + (size & 1)


def index_symbols(name, body):
    """Symbol names of an archive's symbol index, or None for other members."""
    if name in ("/", "/SYM64/"):
        w = 4 if name == "/" else 8
        fmt = ">I" if w == 4 else ">Q"
        count = struct.unpack(fmt, body[:w])[0]
        strings = body[w + count * w:]
        return [s.decode("utf-8", "replace") for s in strings.split(b"\0")[:count]]
    if name.startswith("__.SYMDEF"):
        w = 8 if "_64" in name else 4
        fmt = "<Q" if w == 8 else "<I"
        ranlib_len = struct.unpack(fmt, body[:w])[0]
        ranlibs = body[w:w + ranlib_len]
        str_len = struct.unpack(fmt, body[w + ranlib_len:w + ranlib_len + w])[0]
        strings = body[w + ranlib_len + w:w + ranlib_len + w + str_len]
        out = []
        for i in range(0, ranlib_len, 2 * w):
            strx = struct.unpack(fmt, ranlibs[i:i + w])[0]
            out.append(strings[strx:strings.index(b"\0", strx)].decode("utf-8", "replace"))
        return out
    return None


def machine_of(body):
    """A short description of an object file's format and machine."""
    if body[:4] == b"\x7fELF":
        endian = "<" if body[5] == 1 else ">"
        return ("elf", struct.unpack(endian + "H", body[18:20])[0])
    if body[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        return ("macho", struct.unpack("<I", body[4:8])[0])
    return ("other", body[:4])


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    symbols, objects = None, []
    for name, body in members(data):
        s = index_symbols(name, body)
        if s is not None:
            symbols = (symbols or []) + s
        elif name.endswith(".o") or body[:4] == b"\x7fELF" or body[:4] in (b"\xcf\xfa\xed\xfe",):
            objects.append((name, machine_of(body)))
    if symbols is None:
        raise ValueError(f"{path}: the archive has no symbol index")
    # Mach-O prefixes C symbols with an underscore.
    names = {s[1:] if s.startswith("_") and s[1:].startswith(PREFIXES) else s for s in symbols}
    return {s for s in names if s.startswith(PREFIXES)}, objects


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in {**ELF_MACHINES, **MACHO_CPUS}:
        sys.exit(__doc__)
    reference, target, machine = sys.argv[1:]
    want = ("elf", ELF_MACHINES[machine]) if machine in ELF_MACHINES else ("macho", MACHO_CPUS[machine])
    problems = []
    ref_syms, _ = read(reference)
    got_syms, objects = read(target)
    if len(ref_syms) < 50:
        problems.append(f"{reference}: only {len(ref_syms)} UniFFI symbols (expected the whole API)")
    wrong = [n for n, m in objects if m != want]
    if not objects:
        problems.append(f"{target}: no object files")
    if wrong:
        problems.append(f"{target}: {len(wrong)} of {len(objects)} object files are not {machine} "
                        f"(first: {wrong[0]} is {dict(objects)[wrong[0]]})")
    missing, extra = sorted(ref_syms - got_syms), sorted(got_syms - ref_syms)
    if missing:
        problems.append(f"{target}: {len(missing)} UniFFI symbols missing, e.g. {', '.join(missing[:5])}")
    if extra:
        problems.append(f"{target}: {len(extra)} UniFFI symbols not in the host build, e.g. {', '.join(extra[:5])}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{target}: {len(got_syms)} UniFFI symbols, {len(objects)} object files, all {machine}")


if __name__ == "__main__":
    main()
