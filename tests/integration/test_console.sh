#!/usr/bin/env bash
# The serial console on a terminal: raw mode, Ctrl-A x quits (exit 0), the
# terminal is restored afterwards; a guest that triple-faults exits 4.
source "$(dirname "$0")/lib.sh"
require_kvm "Ctrl-A x quits" "quit is announced on the console" "triple fault exits 4"

python3 - "$EMBER" "$GUEST/idle.elf" >"$TMP/pty.out" 2>&1 <<'PY'
import os, pty, select, sys, termios, time
ember, kernel = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ember, [ember, "run", "--kernel", kernel, "--memory", "64M"])
out = b""
def read_until(pattern, timeout):
    global out
    end = time.time() + timeout
    while pattern not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return pattern in out
ready = read_until(b"idle: ready", 30)
raw = not (termios.tcgetattr(fd)[3] & termios.ICANON)
os.write(fd, b"\x01x")
read_until(b"quit", 10)
status = None
for _ in range(100):
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(st)
        break
    time.sleep(0.1)
if status is None:
    os.kill(pid, 9)
print("ready=%s raw=%s status=%s" % (ready, raw, status))
print(out.decode(errors="replace"))
PY
expect_grep "Ctrl-A x quits" "ready=True raw=True status=0" "$TMP/pty.out"
expect_grep "quit is announced on the console" "ember: quit \(Ctrl-A x\)" "$TMP/pty.out"

# A guest kernel that loads an empty IDT and faults: a triple fault.
python3 - "$TMP/tf.elf" <<'PY'
import struct, sys
# code: lidt [idt0]; ud2  -> #UD with a zero-limit IDT -> #DF -> triple fault
base = 0x100000
code = bytes([0x0f, 0x01, 0x1c, 0x25]) + struct.pack('<I', base + 0x100) + bytes([0x0f, 0x0b])
note = struct.pack('<III', 6, 4, 0x454d0001) + b'Ember\0\0\0' + bytes(4)
ph_off, nph = 64, 2
eh = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9)
eh += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, base, ph_off, 0, 0, 64, 56, nph, 0, 0, 0)
load = struct.pack('<IIQQQQQQ', 1, 7, 0x1000, base, base, 0x200, 0x200, 0x1000)
pnote = struct.pack('<IIQQQQQQ', 4, 4, 0x1000 + 0x180, base + 0x180, base + 0x180, len(note), len(note), 4)
seg = bytearray(0x200)
seg[0:len(code)] = code
seg[0x100:0x10a] = bytes(10)          # IDT descriptor: limit 0, base 0
seg[0x180:0x180 + len(note)] = note
data = eh + load + pnote
data += bytes(0x1000 - len(data)) + bytes(seg)
open(sys.argv[1], 'wb').write(data)
PY
run_vm "$TMP/tf.out" 30 --kernel "$TMP/tf.elf" --memory 16M
if [ "$RC" -eq 4 ] && grep -q "triple fault" "$TMP/tf.out"; then
	pass "triple fault exits 4"
else
	fail "triple fault exits 4" "exit $RC"; sed 's/^/#   /' "$TMP/tf.out"
fi
