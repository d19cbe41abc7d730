#!/usr/bin/env python3
"""Reads the consoles of the Linux guest of test_linux_migration.sh
(tests/integration/linux_migration_guest.sh prints "EMBER-T: tick n=N
up=UPTIME date=EPOCH" lines) and checks them. Each command prints one line,
"OK INFO" or "FAIL WHY", and exits 0 or 1.

  continues SRC DST         a migration: the source's console followed by the
                            destination's is one stream whose ticks count up
                            by one (no number lost or repeated at the seam);
                            the destination ticked at least 3 times
  clock SRC DST DOWNTIME_MS the guest's uptime and date from the source's last
                            tick to the destination's first: forward, by no
                            more than twice the source's longest tick gap +
                            the downtime + 2 s
  restored SRC S0 S1 DST    a restore of a snapshot taken while SRC's console
                            was between S0 and S1 bytes long: DST's ticks count
                            up by one from N, SRC had printed tick N-1 by then
  restored-clock SRC DST    the uptime and date from SRC's tick N-1 to DST's
                            first tick N, as in "clock"
  disk IMG HIST...          every record a tick line says was written is in
                            IMG (sector N: "rec n=N up=UPTIME"); each HIST is
                            consoles joined with "+" (one guest's life across
                            migrations), a later HIST overwriting an earlier
  last FILE                 prints the last tick number in FILE (0 if none)
  complaints [--except-xsave] FILE...
                            the kernel's BUG/WARNING/stall/panic lines in the
                            consoles, one a line ("OK none" if there are none);
                            --except-xsave leaves out the warning of
                            fpu__init_system_xstate ("XSAVE consistency
                            problem": see test_linux_migration.sh)
"""
import re
import sys

TICK = re.compile(r"^EMBER-T: tick n=(\d+) up=([0-9.]+) date=(\d+)$")


def read(path, limit=None):
    with open(path, "rb") as f:
        data = f.read() if limit is None else f.read(limit)
    return data.decode("latin-1")


def joined(spec):
    return "".join(read(p) for p in spec.split("+"))


def ticks(text):
    out = []
    for line in text.replace("\r", "").split("\n"):
        m = TICK.match(line)
        if m:
            out.append((int(m.group(1)), float(m.group(2)), int(m.group(3)), m.group(2)))
    return out


def consecutive(t):
    """None, or where the numbers in t stop counting up by one."""
    for a, b in zip(t, t[1:]):
        if b[0] != a[0] + 1:
            return "tick n=%d followed by n=%d" % (a[0], b[0])
    return None


def max_gap(t):
    return max([b[1] - a[1] for a, b in zip(t, t[1:])] or [1.0])


def ok(msg):
    print("OK " + msg)
    return 0


def fail(msg):
    print("FAIL " + msg)
    return 1


def cmd_continues(src, dst):
    s, d = ticks(read(src)), ticks(read(dst))
    if not s:
        return fail("no tick on the source's console")
    if len(d) < 3:
        return fail("%d ticks on the destination's console (source ended at n=%d)" % (len(d), s[-1][0]))
    if d[0][0] <= s[-1][0]:
        return fail("destination starts at n=%d, source ended at n=%d" % (d[0][0], s[-1][0]))
    both = ticks(read(src) + read(dst))
    why = consecutive(both)
    if why:
        return fail("the joined consoles: " + why)
    return ok("source n=%d..%d, destination n=%d..%d" % (s[0][0], s[-1][0], d[0][0], d[-1][0]))


def clock_gap(before, after, t_src, downtime_s):
    gap_up = after[1] - before[1]
    gap_date = after[2] - before[2]
    limit = 2 * max_gap(t_src) + downtime_s + 2
    info = "uptime %.2f -> %.2f (+%.2f s), date +%d s, limit %.1f s (longest tick gap before %.2f s)" % (
        before[1], after[1], gap_up, gap_date, limit, max_gap(t_src))
    if gap_up <= 0 or gap_up > limit:
        return fail("uptime " + info)
    if gap_date < 0 or gap_date > limit + 1:
        return fail("date " + info)
    return ok(info)


def cmd_clock(src, dst, downtime_ms):
    s, d = ticks(read(src)), ticks(read(dst))
    if not s or not d:
        return fail("no ticks to compare")
    return clock_gap(s[-1], d[0], s, float(downtime_ms) / 1000)


def cmd_restored(src, s0, s1, dst):
    d = ticks(read(dst))
    if len(d) < 3:
        return fail("%d ticks on the restored console" % len(d))
    why = consecutive(d)
    if why:
        return fail("the restored console: " + why)
    lo = ticks(read(src, int(s0)))
    hi = ticks(read(src, int(s1)))
    lo_n = lo[-1][0] if lo else 0
    hi_n = hi[-1][0] if hi else 0
    n = d[0][0]
    # the snapshot came after tick lo_n and before the console reached s1:
    # tick n-1 (the last one whole before it) is lo_n..hi_n, or hi_n + 1 when
    # the snapshot caught its line half printed
    if not lo_n <= n - 1 <= hi_n + 1:
        return fail("restored guest starts at n=%d; when the snapshot was taken the source was at n=%d..%d"
                    % (n, lo_n, hi_n))
    return ok("n=%d..%d after the source's n=%d (the snapshot was taken while the source was at n=%d..%d)"
              % (n, d[-1][0], n - 1, lo_n, hi_n))


def cmd_restored_clock(src, dst):
    s, d = ticks(read(src)), ticks(read(dst))
    if not d:
        return fail("no tick on the restored console")
    n = d[0][0]
    before = [t for t in s if t[0] == n - 1]
    if not before:
        return fail("the source never printed tick n=%d" % (n - 1))
    return clock_gap(before[0], d[0], [t for t in s if t[0] < n], 0)


def cmd_disk(img, *hist):
    want = {}
    for h in hist:
        for n, _, _, up in ticks(joined(h)):
            want[n] = "rec n=%d up=%s" % (n, up)
    if not want:
        return fail("no tick lines")
    bad = []
    with open(img, "rb") as f:
        for n in sorted(want):
            f.seek(512 * n)
            got = f.read(512).decode("latin-1").rstrip("\0\n ")
            if got != want[n]:
                bad.append("sector %d: %r, expected %r" % (n, got[:40], want[n]))
    if bad:
        return fail("%d of %d records wrong: %s" % (len(bad), len(want), "; ".join(bad[:3])))
    return ok("%d records (n=%d..%d) as the guest wrote them" % (len(want), min(want), max(want)))


def cmd_last(path):
    t = ticks(read(path))
    print(t[-1][0] if t else 0)
    return 0


COMPLAINT = re.compile(r"BUG:|WARNING:|Oops|rcu.*stall|soft lockup|hung_task|Call Trace|"
                       r"clocksource.*unstable|Kernel panic")


def cmd_complaints(*args):
    except_xsave = args and args[0] == "--except-xsave"
    bad = []
    for path in args[1:] if except_xsave else args:
        block, in_block = [], False
        for line in read(path).replace("\r", "").split("\n"):
            if "------------[ cut here ]------------" in line:
                block, in_block = [], True
                continue
            if in_block:
                block.append(line)
                if "---[ end trace" in line:
                    in_block = False
                    if not (except_xsave and any("XSAVE consistency problem" in b for b in block)):
                        bad += [b for b in block if COMPLAINT.search(b)]
                continue
            if COMPLAINT.search(line):
                bad.append(line)
        if in_block:
            bad += [b for b in block if COMPLAINT.search(b)]
    if bad:
        print("FAIL " + " | ".join(b.strip() for b in bad[:4]))
        return 1
    return ok("none")


def main():
    cmds = {"continues": (cmd_continues, 2), "clock": (cmd_clock, 3), "restored": (cmd_restored, 4),
            "restored-clock": (cmd_restored_clock, 2),
            "disk": (cmd_disk, None), "last": (cmd_last, 1),
            "complaints": (cmd_complaints, None)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    fn, nargs = cmds[sys.argv[1]]
    args = sys.argv[2:]
    if (nargs is not None and len(args) != nargs) or (nargs is None and len(args) < 1):
        print(__doc__, file=sys.stderr)
        return 2
    return fn(*args)


if __name__ == "__main__":
    sys.exit(main())
