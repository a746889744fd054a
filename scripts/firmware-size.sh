#!/usr/bin/env bash
# Firmware size report (numbers; fails only if the firmware does not build):
# builds firmware/ (the offline authenticator on a Cortex-M4F,
# thumbv7em-none-eabihf, opt-level z, fat LTO, panic abort) and prints
#   - flash: .vector_table + .text + .rodata + .data (its initial values),
#   - static RAM: .data + .bss,
#   - whether any heap is linked (the start-up arena is dropped by the
#     linker when no code path can allocate),
#   - the token's state (TOKEN_STATE_LEN bytes, kept in protected flash),
#   - a worst-case stack estimate from the call graph of the linked image
#     (needs llvm-objdump; frames of direct and literal-pool indirect calls,
#     exception stacking not included).
# Builds into ${CARGO_TARGET_DIR:-target}/firmware (the firmware is its own
# workspace; this keeps its caches next to the root workspace's).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}/firmware"
triple=thumbv7em-none-eabihf
elf="$target_dir/$triple/release/tessera-token-firmware"

t0=$SECONDS
(cd firmware && CARGO_TARGET_DIR="$target_dir" cargo build -q --release --target "$triple")
build_s=$((SECONDS - t0))

# Section sizes (bytes) from the section headers.
declare -A sec=()
while read -r name size; do
  sec[$name]=$((16#$size))
done < <(readelf -S -W "$elf" | sed -n 's/^ *\[ *[0-9]*\] *//p' | awk 'NF >= 5 { print $1, $5 }')
s() { echo "${sec[$1]:-0}"; }
kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

flash=$(( $(s .vector_table) + $(s .text) + $(s .rodata) + $(s .data) ))
ram=$(( $(s .data) + $(s .bss) ))
state_len=$(sed -n 's/^pub const TOKEN_STATE_LEN: usize = \([0-9]*\);/\1/p' core/src/activation/token.rs)

printf 'firmware  tessera-token-firmware (%s, opt-level z, fat LTO, panic abort; built in %ss)\n' "$triple" "$build_s"
printf '  flash       %7d bytes (%s KiB of 512 KiB): .vector_table %d + .text %d + .rodata %d + .data %d\n' \
  "$flash" "$(kib $flash)" "$(s .vector_table)" "$(s .text)" "$(s .rodata)" "$(s .data)"
# The largest statics in RAM (0x2000_0000..): "NAME SIZE, ...".
ram_objects=$(readelf -s -W "$elf" | awk '$4 == "OBJECT" && $2 ~ /^2/ && $3 > 0 { print $3, $8 }' | sort -rn | head -3 |
  sed -E 's/^([0-9]+) .*[0-9]+([A-Za-z_][A-Za-z0-9_]*)17h[0-9a-f]{16}E$/\2 \1/; s/^([0-9]+) (.*)$/\2 \1/' | paste -sd, - | sed 's/,/, /g')
printf '  static RAM  %7d bytes (%s KiB of 128 KiB): .data %d + .bss %d (largest: %s)\n' \
  "$ram" "$(kib $ram)" "$(s .data)" "$(s .bss)" "$ram_objects"
if readelf -s -W "$elf" | grep -q 'tessera_token_firmware5ARENA'; then
  printf '  heap        start-up arena linked: some code path allocates (every allocation after start-up is refused)\n'
else
  printf '  heap        none linked: no code path in the firmware allocates (the start-up arena was dropped)\n'
fi
printf '  token state %7d bytes (TOKEN_STATE_LEN, protected flash)\n' "$state_len"

if command -v llvm-objdump >/dev/null && command -v python3 >/dev/null; then
  python3 - "$elf" <<'PY'
# Worst-case stack from the disassembly: each function's frame (push,
# vpush, sub sp), edges for bl/b to other functions and for blx through a
# register loaded from a literal pool; the deepest path from Reset.
import re, subprocess, sys

dis = subprocess.run(["llvm-objdump", "-d", "-C", "--no-show-raw-insn", sys.argv[1]],
                     capture_output=True, text=True, check=True).stdout
func_re = re.compile(r"^([0-9a-f]+) <(.+)>:$")
ins_re = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
funcs, words, cur = {}, {}, None
for line in dis.splitlines():
    m = func_re.match(line)
    if m:
        if not m.group(2).startswith("$"):  # $d/$t mapping symbols stay in the function
            cur = {"name": m.group(2), "frame": 0, "calls": set(), "regs": {}, "blx": [], "dynamic": False}
            funcs[int(m.group(1), 16)] = cur
        continue
    w = re.search(r"\.word\s+0x([0-9a-f]+)", line)
    m = ins_re.match(line)
    if not m or cur is None:
        continue
    if w:
        words[int(m.group(1), 16)] = int(w.group(1), 16)
        continue
    op, args = m.group(2), m.group(3)
    if op in ("push", "push.w"):
        cur["frame"] += 4 * len(re.search(r"\{(.*)\}", args).group(1).split(","))
    elif op.startswith("vpush"):
        for r in re.search(r"\{(.*)\}", args).group(1).split(","):
            r = r.strip()
            lo, _, hi = r.partition("-")
            n = int(hi[1:]) - int(lo[1:]) + 1 if hi else 1
            cur["frame"] += n * (8 if r.startswith("d") else 4)
    elif op in ("sub", "sub.w", "subw") and re.match(r"sp, (sp, )?#", args):
        cur["frame"] += int(re.search(r"#(\d+)", args).group(1))
    elif op in ("sub", "sub.w") and args.startswith("sp,"):
        cur["dynamic"] = True
    elif op in ("bl", "b", "b.w") and (t := re.search(r"^0x([0-9a-f]+)", args)):
        cur["calls"].add(int(t.group(1), 16))
    elif op in ("ldr", "ldr.w") and "[pc" in args and (lit := re.search(r"@ 0x([0-9a-f]+)", args)):
        cur["regs"].setdefault(args.split(",")[0], []).append(int(lit.group(1), 16))
    elif op == "blx":
        cur["blx"].append(args.strip())

def func_at(a):
    return (a & ~1) if (a & ~1) in funcs else None

unresolved = 0
for fa, f in funcs.items():
    edges = {g for g in map(func_at, f["calls"]) if g is not None and g != fa}
    for r in f["blx"]:
        ts = [t for t in (func_at(words[l]) for l in f["regs"].get(r, []) if l in words) if t is not None]
        unresolved += not ts
        edges.update(ts)
    f["edges"] = edges

memo, on_path = {}, set()
def depth(fa):
    if fa in memo:
        return memo[fa]
    if fa in on_path:
        return 0, []  # recursion (none expected): not counted
    on_path.add(fa)
    best = max((depth(g) for g in funcs[fa]["edges"]), default=(0, []), key=lambda d: d[0])
    on_path.discard(fa)
    memo[fa] = (funcs[fa]["frame"] + best[0], [fa] + best[1])
    return memo[fa]

reset = next(a for a, f in funcs.items() if f["name"] == "Reset")
total, path = depth(reset)
short = lambda n: re.sub(r"::h[0-9a-f]{16}$", "", n)
print(f"  stack       ~{total:5d} bytes worst case (call graph of the linked image; "
      f"{unresolved} unresolved indirect calls{', dynamic frames!' if any(f['dynamic'] for f in funcs.values()) else ''}):")
print("              " + " -> ".join(f"{short(funcs[a]['name'])[-40:]} {funcs[a]['frame']}" for a in path[:4])
      + (" -> ..." if len(path) > 4 else ""))
PY
else
  printf '  stack       (no llvm-objdump: no estimate)\n'
fi
printf '  largest on-stack buffers of Token::scan (token.rs): 682 B QR bytes + 682 B challenge plaintext; the firmware adds its 1024 B copy of the QR text\n'
