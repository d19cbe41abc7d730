#!/usr/bin/env python3
"""Build the nested SVM test host's images under build/testhost/.

The test host is a QEMU TCG virtual machine (`-cpu max`, which emulates AMD
SVM with nested paging) running Debian's cloud kernel with kvm-amd loaded:
a real hardware-virtualization /dev/kvm on any machine, with or without a
/dev/kvm of its own (docs/testing.md). Everything comes from Debian
packages:

  build/testhost/bzImage     the cloud kernel (tools/linux/build.sh fetches
                             it with apt-get download; the same one the
                             Linux-guest tests boot under Ember)
  build/testhost/initrd.gz   busybox-static, the modules the test host needs
                             (kvm-amd, virtio-blk, tun, ... with their
                             dependencies from each module's .modinfo) and
                             tools/testhost/init
  build/testhost/system.img  an ext4 root with the userland the tests run:
                             the files of the Debian packages in SYSTEM_PKGS
                             as installed on this machine (dpkg -L), plus
                             every shared library their programs load (ldd)

Outputs are rebuilt only when an input changed (stamp files hold what they
were built from), so a second run takes a fraction of a second. The
repository itself goes into a work image made per run (tools/testhost/run).
"""
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "build", "testhost")
LINUX = os.path.join(ROOT, "build", "linux")
# Any change to this builder rebuilds what it makes.
SELF = open(os.path.abspath(__file__)).read()

# Kernel modules the test host loads, in any order: dependencies are added
# and sorted first. ext4 and the 8250 UART are built into the cloud kernel.
MODULES = ["irqbypass", "kvm", "kvm_amd", "virtio_pci", "virtio_blk", "tun",
           "virtio_rng"]

# The userland the integration tests use. Libraries come by ldd.
SYSTEM_PKGS = [
    "bash", "dash", "coreutils", "grep", "sed", "mawk", "findutils", "diffutils",
    "util-linux", "mount", "procps", "iproute2", "tar", "gzip", "file",
    "libmagic-mgc", "python3.11-minimal", "libpython3.11-minimal",
    "libpython3.11-stdlib", "python3-minimal", "python3.11", "python3",
    "e2fsprogs", "busybox-static", "strace", "cpio", "binutils",
    "binutils-x86-64-linux-gnu",
    # Two tests assemble small kernels as they run (gcc -m32 -c, ld).
    "gcc", "gcc-12", "cpp-12", "cpp",
]
# Never copied: documentation, locales, Python's own test suite.
SKIP_PREFIXES = ("/usr/share/doc", "/usr/share/man", "/usr/share/info",
                 "/usr/share/locale", "/usr/share/lintian",
                 "/usr/lib/python3.11/test/", "/usr/lib/python3.11/idlelib",
                 "/usr/lib/python3.11/tkinter", "/usr/lib/python3.11/ensurepip")


def log(msg):
    print("testhost-build: " + msg, file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def file_digest(path):
    st = os.stat(path)
    return "%s:%d:%d" % (path, st.st_size, int(st.st_mtime))


def up_to_date(output, key):
    stamp = output + ".stamp"
    try:
        with open(stamp) as f:
            return os.path.exists(output) and f.read() == key
    except OSError:
        return False


def write_stamp(output, key):
    with open(output + ".stamp", "w") as f:
        f.write(key)


def kernel_deb():
    """The cloud kernel .deb tools/linux/build.sh fetched (it runs first)."""
    cache = os.path.join(LINUX, "cache")
    debs = sorted(f for f in os.listdir(cache)
                  if f.startswith("linux-image-") and f.endswith(".deb"))
    if not debs:
        die("no cloud kernel in %s (tools/linux/build.sh fetches it)" % cache)
    return os.path.join(cache, debs[-1])


def busybox_deb():
    cache = os.path.join(LINUX, "cache")
    debs = sorted(f for f in os.listdir(cache) if f.startswith("busybox-static_"))
    if not debs:
        die("no busybox-static in %s" % cache)
    return os.path.join(cache, debs[-1])


# --------------------------------------------------------------------------
# initrd


def modinfo_depends(ko):
    info = subprocess.run(["objcopy", "-O", "binary", "--only-section=.modinfo", ko,
                           "/dev/stdout"], check=True, capture_output=True).stdout
    for field in info.split(b"\0"):
        if field.startswith(b"depends="):
            return [d for d in field[8:].decode().split(",") if d]
    return []


def pick_modules(moddir):
    paths = {}
    for dirpath, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                paths[f[:-3].replace("-", "_")] = os.path.join(dirpath, f)
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            die("module %s is not in this kernel (compressed modules are not handled)" % name)
        for d in modinfo_depends(paths[name]):
            visit(d)
        order.append(name)

    for m in MODULES:
        visit(m)
    return [(m, paths[m]) for m in order]


def build_initrd(kdeb, bdeb):
    out = os.path.join(OUT, "initrd.gz")
    init = os.path.join(HERE, "init")
    key = digest(SELF, file_digest(kdeb), file_digest(bdeb), open(init).read())
    if up_to_date(out, key):
        return
    with tempfile.TemporaryDirectory(dir=OUT) as work:
        kdir = os.path.join(work, "k")
        run(["dpkg-deb", "-x", kdeb, kdir])
        krel = os.listdir(os.path.join(kdir, "lib", "modules"))[0]
        mods = pick_modules(os.path.join(kdir, "lib", "modules", krel))
        bdir = os.path.join(work, "b")
        run(["dpkg-deb", "-x", bdeb, bdir])
        r = os.path.join(work, "root")
        for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
            os.makedirs(os.path.join(r, d))
        shutil.copy(os.path.join(bdir, "bin", "busybox"), os.path.join(r, "bin", "busybox"))
        for applet in ("sh", "mount", "umount", "insmod", "mkdir", "cat", "echo", "poweroff",
                       "chroot", "sleep", "ln", "sync", "switch_root"):
            os.symlink("busybox", os.path.join(r, "bin", applet))
        with open(os.path.join(r, "modules", "order"), "w") as f:
            for name, path in mods:
                shutil.copy(path, os.path.join(r, "modules", name + ".ko"))
                f.write(name + "\n")
        shutil.copy(init, os.path.join(r, "init"))
        os.chmod(os.path.join(r, "init"), 0o755)
        files = subprocess.run("cd %s && find . -mindepth 1 | sort" % r, shell=True,
                               check=True, capture_output=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet", "-D", r],
                              input=files.replace(b"./", b"", ), check=True,
                              capture_output=True).stdout
        # /dev/console must exist before /init runs; cpio cannot make a device
        # node without mknod on the host, so a second archive holds it.
        cpio += newc_entry("dev/console", 0o20600, 5, 1, 0xE0000001) + newc_entry("TRAILER!!!", 0, 0, 0, 0)
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(subprocess.run(["gzip", "-1", "-n"], input=cpio, check=True,
                                   capture_output=True).stdout)
        os.rename(tmp, out)
    write_stamp(out, key)
    log("initrd: %d modules (%s)" % (len(mods), " ".join(m for m, _ in mods)))


def newc_entry(name, mode, major, minor, ino):
    nb = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, 1, 0, 0, 0, 0, major, minor, len(nb), 0))
    data = hdr.encode() + nb
    return data + b"\0" * ((4 - len(data) % 4) % 4)


# --------------------------------------------------------------------------
# system image


def package_files(pkgs):
    res = subprocess.run(["dpkg", "-L"] + pkgs, capture_output=True, text=True)
    if res.returncode != 0:
        die("dpkg -L failed (run tools/install-deps.sh): " + res.stderr.strip().splitlines()[-1])
    out = []
    for p in res.stdout.splitlines():
        if p.startswith("/") and not p.startswith(SKIP_PREFIXES) and p != "/.":
            out.append(p)
    return out


def copy_path(src, stage):
    """Copy SRC (a file or symlink) to the same place under STAGE, on its
    merged-/usr location (/bin -> /usr/bin...)."""
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    real_dir = os.path.realpath(os.path.dirname(src))
    dst = stage + os.path.join(real_dir, os.path.basename(src))
    if os.path.lexists(dst):
        return None
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(src)
        os.symlink(target, dst)
        # The target must come along too.
        copy_path(os.path.join(os.path.dirname(src), target) if not target.startswith("/")
                  else target, stage)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst)
        return dst
    return None


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def libraries(path):
    res = subprocess.run(["ldd", path], capture_output=True, text=True)
    if res.returncode != 0:
        return []
    libs = []
    for line in res.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def system_files():
    """Every file the image holds: the packages' files and the libraries of
    every ELF among them, and of Ember's own programs."""
    files = package_files(SYSTEM_PKGS)
    elves = [f for f in files if os.path.isfile(f) and not os.path.islink(f) and is_elf(f)]
    elves += [os.path.join(ROOT, "build", "ember"), os.path.join(ROOT, "build", "asan", "ember")]
    libs = set()
    for e in elves:
        libs.update(libraries(e))
    return sorted(set(files) | libs)


def add_alternatives(stage):
    """Commands that reach their program through /etc/alternatives (awk ->
    mawk) are no package's files: link each whose program came along."""
    for name in os.listdir("/etc/alternatives"):
        for d in ("/usr/bin", "/usr/sbin"):
            link = os.path.join(d, name)
            if not os.path.islink(link) or os.path.lexists(stage + link):
                continue
            target = os.path.realpath(link)
            if os.path.exists(stage + target):
                os.symlink(target, stage + link)


ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "etc/hostname": "testhost\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}


def build_system():
    out = os.path.join(OUT, "system.img")
    job = os.path.join(HERE, "job.sh")
    # What the image is made of: the packages' versions, Ember's libraries,
    # the /etc files and the job script. The file list is made only on a miss.
    versions = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"] + SYSTEM_PKGS,
                              capture_output=True, text=True).stdout
    ember_libs = [file_digest(l) for b in ("ember", "asan/ember")
                  for l in libraries(os.path.join(ROOT, "build", b))]
    key = digest(SELF, versions, *ember_libs, repr(sorted(ETC_FILES.items())), open(job).read())
    if up_to_date(out, key):
        return
    files = system_files()
    with tempfile.TemporaryDirectory(dir=OUT) as work:
        stage = os.path.join(work, "root")
        for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "proc", "sys", "dev",
                  "tmp", "run", "var", "root", "newroot-out", "mnt"):
            os.makedirs(os.path.join(stage, d), exist_ok=True)
        for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                             ("lib64", "usr/lib64")):
            os.symlink(target, os.path.join(stage, link))
        os.symlink("/run", os.path.join(stage, "var", "run"))
        os.symlink("/tmp", os.path.join(stage, "var", "tmp"))
        for f in files:
            copy_path(f, stage)
        add_alternatives(stage)
        for rel, text in ETC_FILES.items():
            with open(os.path.join(stage, rel), "w") as f:
                f.write(text)
        shutil.copy(os.path.join(HERE, "job.sh"), os.path.join(stage, "usr", "sbin", "testhost-job"))
        size = subprocess.run(["du", "-sm", stage], check=True, capture_output=True,
                              text=True).stdout.split()[0]
        mke2fs(stage, out, int(size) + 64)
        log("system image: %d files, %s MiB" % (len(files), size))
    write_stamp(out, key)


def mke2fs(stage, image, mib):
    tmp = image + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    with open(tmp, "wb") as f:
        f.truncate(mib << 20)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-E", "root_owner=0:0",
         "-d", stage, tmp, "%dM" % mib])
    os.rename(tmp, image)


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(os.path.join(LINUX, "bzImage")):
        die("no %s/bzImage (tools/linux/build.sh makes it)" % LINUX)
    for tool in ("dpkg-deb", "objcopy", "cpio", "mke2fs", "ldd", "gzip"):
        if shutil.which(tool) is None:
            die("%s not found (run tools/install-deps.sh)" % tool)
    kdeb, bdeb = kernel_deb(), busybox_deb()
    build_initrd(kdeb, bdeb)
    bz = os.path.join(OUT, "bzImage")
    if not os.path.exists(bz) or os.stat(bz).st_mtime < os.stat(os.path.join(LINUX, "bzImage")).st_mtime:
        shutil.copy2(os.path.join(LINUX, "bzImage"), bz + ".tmp")
        os.rename(bz + ".tmp", bz)
    build_system()


if __name__ == "__main__":
    main()
