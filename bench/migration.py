#!/usr/bin/env python3
"""Live migration, snapshot and restore: Ember against QEMU 7.2 in one run
(bench/migration.sh is the entry point; it says what the modes run).

Every row migrates the same guest, tests/guest/kernels/dirtyload.c (a CPL3
writer that rewrites whole pages at `rate` MB/s, `pattern` random or seq,
over all RAM above 16 MiB), from a source VMM to a destination VMM on this
host over loopback TCP:

  ember-bitmap  ember run --dirty-tracking bitmap, `ember ctl migrate`
  ember-ring    ember run --dirty-tracking ring (4096 entries per vCPU)
  qemu-bitmap   qemu-system-x86_64 -accel kvm, QMP migrate to -incoming tcp:
  qemu-ring     the same with -accel kvm,dirty-ring-size=4096

Both VMMs get the same downtime limit (50 ms, Ember's default; QEMU's is
300) and no bandwidth cap (QEMU's default is 32 MiB/s); QEMU runs with
auto-converge, its way of converging when the guest dirties faster than the
link (Ember throttles by default). After the migration the destination
guest gets a 'v' on its serial port and checks every page, its checksum,
its vCPUs and its timer: a row whose guest does not verify is marked.

Figures per row:
  total     the VMM's own figure: Ember's elapsed_ms, QEMU's total-time
  downtime  source pause -> destination running, on this host's clock:
            Ember's downtime_ms (pause -> the destination's resume time);
            QEMU: the source's STOP event -> the destination's RESUME event
            (QEMU's own "downtime" figure, which stops at the source, is
            kept as qemu_downtime)
  passes    Ember's passes; QEMU's dirty-sync-count
  sent      pages sent (zero pages included) and MiB on the wire
  harvest   Ember: dirty-log work per pass after the first (median, max):
            the sync at the pass boundary plus the tracking work during the
            pass (KVM_CLEAR_DIRTY_LOG re-arms; ring harvests on full exits
            and polls, and the re-protection of all RAM after kvm_pvm
            overran a ring: "overruns"); QEMU reports nothing comparable
  wrate     the rate the guest actually wrote at during the migration
            (from its "alive" lines: page writes over TSC time)
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.environ.get("EMBER", os.path.join(ROOT, "build/ember"))
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
KERNEL = os.environ.get("DIRTYLOAD", os.path.join(ROOT, "build/guest/dirtyload.elf"))
OUT = os.path.join(ROOT, "build/bench")
RING = 4096
DOWNTIME_MS = 50
MIGRATE_TIMEOUT = 180
VMMS = ("ember-bitmap", "ember-ring", "qemu-bitmap", "qemu-ring")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Proc:
    """A VMM process: stdin a pipe (the guest's serial input), stdout and
    stderr into a file that wait_for() reads."""

    def __init__(self, argv, out):
        self.out = out
        self.f = open(out, "wb")
        self.t_start = time.time()
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self.f, stderr=subprocess.STDOUT)

    def text(self):
        with open(self.out, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, pattern, timeout, start=0):
        """The first match of pattern in the output past offset start."""
        deadline = time.time() + timeout
        rx = re.compile(pattern, re.M)
        while time.time() < deadline:
            m = rx.search(self.text(), start)
            if m:
                return m
            if self.p.poll() is not None:
                m = rx.search(self.text(), start)
                return m
            time.sleep(0.02)
        return None

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.f.close()


class QMP:
    def __init__(self, path, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.005)
        self.s.settimeout(timeout)
        self.buf = b""
        self.events = []
        self._read()   # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("QMP closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"].get("desc")))
            elif "return" in r:
                return r["return"]

    def event(self, name, timeout):
        """The first event of that name (seen before or arriving now)."""
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e["event"] == name:
                    return e
            left = deadline - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                r = self._read()
            except (socket.timeout, EOFError):
                return None
            if "event" in r:
                self.events.append(r)

    def close(self):
        self.s.close()


def event_time(e):
    return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6


ALIVE = re.compile(r"^dirtyload: alive \d+ writes (\d+) ms (\d+)", re.M)


def write_rate(src_text, src_offset, dst_text):
    """MB/s the guest wrote from its last "alive" line before the migration
    started (src_offset) to its first on the destination."""
    before = [m for m in ALIVE.finditer(src_text) if m.start() < src_offset]
    after = list(ALIVE.finditer(dst_text))
    if not before or not after:
        return None
    w0, m0 = map(int, before[-1].groups())
    w1, m1 = map(int, after[0].groups())
    if m1 <= m0:
        return None
    return (w1 - w0) * 4096 / ((m1 - m0) / 1000) / 1e6


def verify(dst, timeout):
    """Ask the destination guest to check everything; True when it did."""
    dst.wait_for(r"^dirtyload: alive", 5, 0)
    dst.send(b"v")
    dst.wait(timeout)
    return bool(re.search(r"^SUMMARY: 5 tests, 0 failures", dst.text(), re.M))


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="ember-migbench.")
        self.port = 20000 + os.getpid() % 20000
        self.procs = []

    def next_port(self):
        self.port += 1
        return self.port

    def path(self, name):
        return os.path.join(self.tmp, name)

    def proc(self, argv, name):
        p = Proc(argv, self.path(name))
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            p.kill()
        self.procs = []

    def cmdline(self, rate, pattern):
        return "rate=%d pattern=%s seconds=0" % (rate, pattern)

    # ---- Ember ----------------------------------------------------------------------
    def ember_src(self, mem, rate, pattern, backend, sock, name):
        return self.proc([EMBER, "run", "--kernel", KERNEL, "--memory", "%dM" % mem, "--debug-exit",
                          "--dirty-tracking", backend, "--cmdline", self.cmdline(rate, pattern),
                          "--api-socket", sock], name)

    def ember(self, mem, rate, pattern, backend):
        port = self.next_port()
        uri = "tcp:127.0.0.1:%d" % port
        sock = self.path("src.sock")
        dst = self.proc([EMBER, "run", "--incoming", uri, "--dirty-tracking", backend, "--log-level", "info"],
                        "ember-dst.out")
        if not dst.wait_for(r"incoming migration: waiting on", 10):
            return {"error": "destination did not listen"}
        src = self.ember_src(mem, rate, pattern, backend, sock, "ember-src.out")
        if not src.wait_for(r"^dirtyload: ready", 120):
            return {"error": "guest not ready"}
        time.sleep(self.args.settle)
        off = len(src.text())
        ctl = subprocess.run([EMBER, "ctl", "--json", sock, "migrate", uri], capture_output=True, text=True,
                             timeout=MIGRATE_TIMEOUT + 60)
        events = [json.loads(l) for l in ctl.stdout.splitlines() if l.startswith("{")]
        mig = [e for e in events if e.get("event") == "migration"]
        if not mig or mig[-1]["status"] != "completed":
            err = mig[-1].get("error") if mig else ctl.stderr.strip()
            return {"error": "migration failed: %s" % err}
        src.wait(30)
        last = mig[-1]
        # One harvest figure per pass after the first: the last event of
        # each pass carries the sync that opened it and the work during it.
        per_pass = {}
        for e in mig:
            if e["status"] == "active":
                per_pass[e["pass"]] = e
        harvest = [(p.get("harvest_us", 0) + p.get("track_us", 0)) for n, p in sorted(per_pass.items()) if n > 1]
        res = {
            "total_ms": last["elapsed_ms"],
            "downtime_ms": last["downtime_ms"],
            "passes": last["pass"],
            "pages": last["pages_sent"],
            "mib": last["bytes_sent"] / 1048576,
            "harvest_us": statistics.median(harvest) if harvest else None,
            "harvest_max_us": max(harvest) if harvest else None,
            "full_exits": last.get("ring_full_exits"),
            "overruns": last.get("ring_overruns"),
            "throttled": any(e.get("throttle_mbps", 0) > 0 for e in mig),
        }
        res["wrate"] = write_rate(src.text(), off, dst.text() if dst.wait_for(ALIVE.pattern, 5) else "")
        res["verified"] = verify(dst, 120)
        return res

    # ---- QEMU -----------------------------------------------------------------------
    def qemu_argv(self, mem, rate, pattern, ring, qmp, extra):
        accel = "kvm" + (",dirty-ring-size=%d" % RING if ring else "")
        # QEMU_MEMFD=1: guest RAM on a memfd, the kind Ember uses (no
        # transparent huge pages unless shmem allows them).
        ram = ["-object", "memory-backend-memfd,id=ram,size=%dM,share=on" % mem, "-machine",
               "memory-backend=ram"] if os.environ.get("QEMU_MEMFD") else []
        return [QEMU, "-accel", accel, "-m", "%dM" % mem] + ram + ["-smp", "1", "-nographic", "-nodefaults",
                "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", KERNEL,
                "-append", self.cmdline(rate, pattern), "-qmp", "unix:%s,server=on,wait=off" % qmp] + extra

    def qemu(self, mem, rate, pattern, ring):
        port = self.next_port()
        dq, sq = self.path("dst.qmp"), self.path("src.qmp")
        dst = self.proc(self.qemu_argv(mem, rate, pattern, ring, dq, ["-incoming", "tcp:127.0.0.1:%d" % port]),
                        "qemu-dst.out")
        src = self.proc(self.qemu_argv(mem, rate, pattern, ring, sq, []), "qemu-src.out")
        dqmp = QMP(dq)
        if not src.wait_for(r"^dirtyload: ready", 120):
            return {"error": "guest not ready"}
        sqmp = QMP(sq)
        sqmp.cmd("migrate-set-capabilities", capabilities=[{"capability": "auto-converge", "state": True}])
        sqmp.cmd("migrate-set-parameters", **{"downtime-limit": DOWNTIME_MS, "max-bandwidth": 1 << 40})
        time.sleep(self.args.settle)
        off = len(src.text())
        sqmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        deadline = time.time() + MIGRATE_TIMEOUT
        while True:
            q = sqmp.cmd("query-migrate")
            if q.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.time() > deadline:
                sqmp.cmd("migrate_cancel")
                return {"error": "no convergence in %d s" % MIGRATE_TIMEOUT}
            time.sleep(0.05)
        if q["status"] != "completed":
            return {"error": "migration %s: %s" % (q["status"], q.get("error-desc", ""))}
        stop = sqmp.event("STOP", 5)
        resume = dqmp.event("RESUME", 10)
        ram = q["ram"]
        res = {
            "total_ms": q["total-time"],
            "downtime_ms": (event_time(resume) - event_time(stop)) * 1000 if stop and resume else None,
            "qemu_downtime_ms": q.get("downtime"),
            "passes": ram.get("dirty-sync-count"),
            "pages": ram.get("normal", 0) + ram.get("duplicate", 0),
            "mib": ram["transferred"] / 1048576,
            "harvest_us": None,
            "harvest_max_us": None,
            "throttled": q.get("cpu-throttle-percentage", 0) > 0 or ram.get("dirty-sync-count", 0) > 30,
        }
        sqmp.close()
        src.wait(10)
        dqmp.close()
        res["wrate"] = write_rate(src.text(), off, dst.text() if dst.wait_for(ALIVE.pattern, 5) else "")
        res["verified"] = verify(dst, 120)
        return res

    def run_row(self, mem, rate, pattern, vmm):
        try:
            if vmm.startswith("ember"):
                r = self.ember(mem, rate, pattern, vmm.split("-")[1])
            else:
                r = self.qemu(mem, rate, pattern, vmm == "qemu-ring")
        except Exception as e:   # a broken row must not end the run
            r = {"error": "%s: %s" % (type(e).__name__, e)}
        if r.get("error") or not r.get("verified"):
            for p in self.procs:   # the outputs of a failed row, to look at
                shutil.copy(p.out, os.path.join(OUT, "migration-failed-%s-%s" % (vmm, os.path.basename(p.out))))
        self.cleanup()
        return r

    # ---- snapshot and restore ------------------------------------------------------------
    def snapshot_ember(self, mem, n):
        sock = self.path("snap.sock")
        d = self.path("ember-snap")
        shutil.rmtree(d, ignore_errors=True)
        src = self.ember_src(mem, 100, "random", "bitmap", sock, "snap-src.out")
        res = {}
        try:
            if not src.wait_for(r"^dirtyload: ready", 120):
                return {"error": "guest not ready"}
            time.sleep(self.args.settle)
            ctl = subprocess.run([EMBER, "ctl", "--json", sock, "snapshot", d], capture_output=True, text=True,
                                 timeout=300)
            ev = [json.loads(l) for l in ctl.stdout.splitlines() if l.startswith("{") and '"event"' in l]
            if not ev or ev[-1]["status"] != "completed":
                return {"error": "snapshot failed: %s" % ctl.stderr.strip()}
            res["paused_ms"] = ev[-1]["paused_ms"]
            res["total_ms"] = ev[-1]["total_ms"]
            res["written_mib"] = ev[-1]["bytes_written"] / 1048576
            src.send(b"v")
            src.wait(60)
            firsts, loads, ok = [], [], True
            for i in range(n):
                r = self.proc([EMBER, "run", "--restore", d, "--log-level", "info"], "restore-%d.out" % i)
                m = r.wait_for(r"first KVM_RUN ([0-9.]+) ms after start", 30)
                ld = r.wait_for(r"guest RAM loaded in ([0-9.]+) ms", 60)
                if m:
                    firsts.append(float(m.group(1)))
                if ld:
                    loads.append(float(ld.group(1)))
                ok = verify(r, 60) and ok
            res["restore_ms"] = firsts
            res["loaded_ms"] = loads
            res["verified"] = ok
            return res
        finally:
            self.cleanup()
            shutil.rmtree(d, ignore_errors=True)

    def snapshot_qemu(self, mem, n):
        q = self.path("snapq.qmp")
        f = self.path("qemu-snap.bin")
        src = self.proc(self.qemu_argv(mem, 100, "random", False, q, []), "qsnap-src.out")
        res = {}
        try:
            if not src.wait_for(r"^dirtyload: ready", 120):
                return {"error": "guest not ready"}
            qmp = QMP(q)
            qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
            time.sleep(self.args.settle)
            t0 = time.time()
            qmp.cmd("stop")
            qmp.cmd("migrate", uri="exec:cat > %s" % f)
            while qmp.cmd("query-migrate").get("status") not in ("completed", "failed"):
                time.sleep(0.01)
            res["paused_ms"] = (time.time() - t0) * 1000
            res["total_ms"] = res["paused_ms"]
            res["written_mib"] = os.path.getsize(f) / 1048576
            qmp.cmd("quit")
            qmp.close()
            src.wait(10)
            firsts, ok = [], True
            for i in range(n):
                rq = self.path("qrestore.qmp")
                argv = self.qemu_argv(mem, 100, "random", False, rq, ["-incoming", "exec:cat %s" % f])
                argv[argv.index("unix:%s,server=on,wait=off" % rq)] = "unix:%s,server=on,wait=on" % rq
                r = self.proc(argv, "qrestore-%d.out" % i)
                rqmp = QMP(rq)
                # The state was saved stopped, so QEMU stays stopped after
                # loading it: continue it as soon as it has.
                while rqmp.cmd("query-status")["status"] == "inmigrate":
                    time.sleep(0.001)
                rqmp.cmd("cont")
                e = rqmp.event("RESUME", 60)
                if e:
                    firsts.append((event_time(e) - r.t_start) * 1000)
                rqmp.close()
                ok = verify(r, 60) and ok
            res["restore_ms"] = firsts
            res["loaded_ms"] = firsts
            res["verified"] = ok
            return res
        except Exception as e:
            return {"error": "%s: %s" % (type(e).__name__, e)}
        finally:
            self.cleanup()
            if os.path.exists(f):
                os.unlink(f)


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def host_line():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    backend = "kvm_pvm" if os.path.exists("/sys/module/kvm_pvm") else "kvm"
    qv = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()[0] \
        if shutil.which(QEMU) else "no QEMU"
    return "%s, %d CPUs, %d GiB, Linux %s (%s), %s" % (cpu, os.cpu_count(), os.sysconf("SC_PHYS_PAGES") *
                                                     os.sysconf("SC_PAGE_SIZE") >> 30, os.uname().release,
                                                     backend, qv)


def main():
    ap = argparse.ArgumentParser(description="Ember vs QEMU: live migration, snapshot, restore")
    ap.add_argument("--full", action="store_true", help="the whole matrix (about an hour)")
    ap.add_argument("--sizes", help="guest MiB, comma-separated")
    ap.add_argument("--rates", help="MB/s, comma-separated")
    ap.add_argument("--patterns", help="random,seq")
    ap.add_argument("--vmms", help=",".join(VMMS))
    ap.add_argument("--no-snapshot", action="store_true")
    ap.add_argument("--restores", type=int, default=10)
    ap.add_argument("--settle", type=float, default=1.5, help="seconds of workload before migrating")
    ap.add_argument("--tsv", default="migration.tsv", help="raw figures: build/bench/NAME")
    ap.add_argument("--snapshot-only", action="store_true", help="no migrations")
    ap.add_argument("--report", nargs="+", metavar="TSV",
                    help="only print the tables from these build/bench/ files (and migration-snapshot.json)")
    a = ap.parse_args()
    sizes = [1024, 4096] if a.full else [1024]
    rates = [0, 100, 400, 800] if a.full else [0, 100, 800]
    patterns = ["random", "seq"] if a.full else ["random"]
    if a.sizes:
        sizes = [int(x) for x in a.sizes.split(",")]
    if a.rates:
        rates = [int(x) for x in a.rates.split(",")]
    if a.patterns:
        patterns = a.patterns.split(",")
    vmms = a.vmms.split(",") if a.vmms else list(VMMS)
    if not shutil.which(QEMU):
        log("# %s not installed: Ember only" % QEMU)
        vmms = [v for v in vmms if v.startswith("ember")]
    os.makedirs(OUT, exist_ok=True)
    if a.report:
        report_files(a.report)
        return
    if a.snapshot_only:
        sizes = []
    load0 = os.getloadavg()[0]
    b = Bench(a)
    results = []
    tsv = open(os.path.join(OUT, a.tsv), "w")
    cols = ["mem_mib", "rate", "pattern", "vmm", "total_ms", "downtime_ms", "qemu_downtime_ms", "passes", "pages",
            "mib", "harvest_us", "harvest_max_us", "full_exits", "overruns", "wrate", "throttled", "verified",
            "error"]
    tsv.write("\t".join(cols) + "\n")
    try:
        for mem in sizes:
            for rate in rates:
                for pattern in (patterns if rate else patterns[:1]):
                    for vmm in vmms:
                        t0 = time.time()
                        r = b.run_row(mem, rate, pattern, vmm)
                        r.update(mem_mib=mem, rate=rate, pattern=pattern if rate else "-", vmm=vmm)
                        results.append(r)
                        tsv.write("\t".join(str(r.get(c, "")) for c in cols) + "\n")
                        tsv.flush()
                        log("%5d MiB %4d MB/s %-6s %-12s %s (%.0f s)" % (
                            mem, rate, r["pattern"], vmm,
                            r.get("error") or "total %s ms, downtime %s ms, %s passes, wrate %s MB/s, %s" % (
                                fmt(r["total_ms"]), fmt(r["downtime_ms"], "%.1f"), r["passes"],
                                fmt(r["wrate"]), "verified" if r["verified"] else "NOT VERIFIED"),
                            time.time() - t0))
        snaps = {}
        if not a.no_snapshot:
            snaps["ember"] = b.snapshot_ember(1024, a.restores)
            log("snapshot ember: %s" % snaps["ember"])
            if shutil.which(QEMU):
                snaps["qemu"] = b.snapshot_qemu(1024, max(1, min(a.restores, 3)))
                log("snapshot qemu: %s" % snaps["qemu"])
            with open(os.path.join(OUT, "migration-snapshot.json"), "w") as f:
                json.dump(snaps, f)
    finally:
        b.cleanup()
        shutil.rmtree(b.tmp, ignore_errors=True)
        tsv.close()
    report(results, snaps, vmms, load0)


def report_files(names):
    """The tables again from saved figures (several runs, one table)."""
    results = []
    conv = {"mem_mib": int, "rate": int, "passes": int, "pages": int}
    for name in names:
        with open(os.path.join(OUT, name)) as f:
            head = f.readline().rstrip("\n").split("\t")
            for line in f:
                v = dict(zip(head, line.rstrip("\n").split("\t")))
                r = {}
                for k, x in v.items():
                    if x in ("", "None"):
                        r[k] = None
                    elif k in conv:
                        r[k] = conv[k](x)
                    elif x in ("True", "False"):
                        r[k] = x == "True"
                    else:
                        try:
                            r[k] = float(x)
                        except ValueError:
                            r[k] = x
                results.append(r)
    snaps = {}
    path = os.path.join(OUT, "migration-snapshot.json")
    if os.path.exists(path):
        with open(path) as f:
            snaps = json.load(f)
    snaps.pop("load", None)
    report(results, snaps, VMMS, "(several runs)")


def report(results, snaps, vmms, load0):
    lines = []
    p = lines.append
    p("Live migration over loopback TCP, dirtyload guest, 1 vCPU; %s; load average %s at the start, %s at the end"
      % (host_line(), load0, os.getloadavg()[0]))
    p("")
    p("| guest | rate | pattern | VMM | total ms | downtime ms | passes | pages sent | MiB sent |"
      " harvest/pass us (median, max) | guest wrote MB/s | verified |")
    p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if r.get("error"):
            p("| %d GiB | %d | %s | %s | %s | | | | | | | |" % (r["mem_mib"] >> 10, r["rate"], r["pattern"], r["vmm"],
                                                           r["error"]))
            continue
        dt = fmt(r["downtime_ms"], "%.1f")
        if r.get("qemu_downtime_ms") is not None:
            dt += " (%d)" % r["qemu_downtime_ms"]
        hv = "-" if r["harvest_us"] is None else "%.0f, %.0f" % (r["harvest_us"], r["harvest_max_us"])
        if r.get("overruns"):
            hv += " (%d overruns)" % r["overruns"]
        p("| %d GiB | %d | %s | %s | %.0f | %s | %s%s | %d | %.0f | %s | %s | %s |" % (
            r["mem_mib"] >> 10, r["rate"], r["pattern"], r["vmm"], r["total_ms"], dt, r["passes"],
            " (throttled)" if r.get("throttled") else "", r["pages"], r["mib"], hv, fmt(r["wrate"]),
            "yes" if r["verified"] else "**no**"))
    p("")
    p("Ember / QEMU, same row, same dirty-tracking kind (below 1 = Ember faster or shorter):")
    p("")
    p("| guest | rate | pattern | total bitmap | total ring | downtime bitmap | downtime ring |")
    p("| --- | --- | --- | --- | --- | --- | --- |")
    key = lambda r: (r["mem_mib"], r["rate"], r["pattern"])
    rows = {}
    for r in results:
        rows.setdefault(key(r), {})[r["vmm"]] = r

    def ratio(a, b, k):
        if not a or not b or a.get("error") or b.get("error") or a.get(k) is None or not b.get(k):
            return "-"
        return "%.2f" % (a[k] / b[k])
    for k, v in rows.items():
        p("| %d GiB | %d | %s | %s | %s | %s | %s |" % (
            k[0] >> 10, k[1], k[2], ratio(v.get("ember-bitmap"), v.get("qemu-bitmap"), "total_ms"),
            ratio(v.get("ember-ring"), v.get("qemu-ring"), "total_ms"),
            ratio(v.get("ember-bitmap"), v.get("qemu-bitmap"), "downtime_ms"),
            ratio(v.get("ember-ring"), v.get("qemu-ring"), "downtime_ms")))
    if snaps:
        p("")
        p("Snapshot and restore, 1 GiB guest writing 100 MB/s at random (medians over the restores):")
        p("")
        p("| VMM | snapshot: paused ms | written MiB | restore: start -> running ms (median, min) | RAM all loaded ms |"
          " verified |")
        p("| --- | --- | --- | --- | --- | --- |")
        for name, s in snaps.items():
            if s.get("error"):
                p("| %s | %s | | | | |" % (name, s["error"]))
                continue
            p("| %s | %.0f | %.0f | %s | %s | %s |" % (
                name, s["paused_ms"], s["written_mib"],
                "%.2f, %.2f" % (statistics.median(s["restore_ms"]), min(s["restore_ms"])) if s["restore_ms"] else "-",
                fmt(statistics.median(s["loaded_ms"]) if s["loaded_ms"] else None),
                "yes" if s["verified"] else "**no**"))
        p("")
        p("(Ember: start = the top of main(), running = the first KVM_RUN, RAM loaded by userfaultfd"
          " behind the running guest; QEMU: start = the exec, running = the RESUME event, RAM loaded"
          " before it runs; snapshot = `ember ctl snapshot` / QMP stop + migrate to exec:cat > file)")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(OUT, "migration.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
