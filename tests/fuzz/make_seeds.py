#!/usr/bin/env python3
"""Writes the synthetic seed inputs of the loader, device, PCI, virtio and
balloon-state fuzz targets into
tests/fuzz/corpus/{boot,multiboot,devices,pci,virtio,devstate,balloon_state,cpumodel}/
and the dictionary tests/fuzz/fuzz_cpumodel.dict
(the stripped guest kernels there are copied by hand: strip -o ...
build/guest/...).
Run from the repository root: python3 tests/fuzz/make_seeds.py"""
import os
import re
import struct

ROOT = os.path.join(os.path.dirname(__file__), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def bzimage(protocol=0x20f, xloadflags=1, payload=4096):
    """4+1 setup sectors, then a payload (as tests/unit/test_kernel.c)."""
    d = bytearray(5 * 512 + payload)
    d[0x1F1] = 4
    d[0x202:0x206] = b"HdrS"
    d[0x201] = 0x66
    struct.pack_into("<H", d, 0x206, protocol)
    d[0x211] = 0x01
    struct.pack_into("<H", d, 0x236, xloadflags)
    struct.pack_into("<I", d, 0x260, 0x200000)
    struct.pack_into("<I", d, 0x238, 2048)
    struct.pack_into("<I", d, 0x22C, 0x7FFFFFFF)
    d[5 * 512:] = b"\xcc" * payload
    return bytes(d)


MB_MAGIC = 0x1BADB002


def mb_aout(flags=0x00010003, load=0x100000, size=0x1000):
    """A multiboot a.out-kludge image: header at 0, addresses in it."""
    hdr = struct.pack("<III", MB_MAGIC, flags, (-(MB_MAGIC + flags)) & 0xFFFFFFFF)
    hdr += struct.pack("<IIIII", load, load, load + size, load + size + 0x1000, load + 0x40)
    return hdr + b"\x90" * (size - len(hdr))


def mb_elf32(paddr=0x100000, memsz=0x2000):
    """ELF32 with one PT_LOAD that holds the multiboot header."""
    eh_size, ph_size = 52, 32
    flags = 0x00000003
    mb = struct.pack("<III", MB_MAGIC, flags, (-(MB_MAGIC + flags)) & 0xFFFFFFFF)
    code = mb + b"\xf4" * 64
    off = eh_size + ph_size
    ident = b"\x7fELF" + bytes([1, 1, 1]) + b"\0" * 9
    eh = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, paddr + 12, eh_size, 0, 0, eh_size, ph_size, 1, 0, 0, 0)
    ph = struct.pack("<IIIIIIII", 1, off, paddr, paddr, len(code), memsz, 5, 0x1000)
    return eh + ph + code


def mb_input(kernel, cmdline=b"fuzz arg=1", module=b"module-bytes" * 8):
    return struct.pack("<H", len(cmdline)) + cmdline + struct.pack("<I", len(module)) + module + kernel


def op(dev, write, off, size_sel, value=0, below=False):
    b0 = (dev & 0x0F) | (0x80 if write else 0) | (0x40 if below else 0)
    return struct.pack("<BHBI", b0, off, size_sel, value & 0xFFFFFFFF)


# devices: 0 serial, 1 acpi-pm, 2 fw_cfg, 3 rtc, 4 testdev scratch, 5 flush,
# 6 testdev byte, 7 testdev irq, 8 testdev iomem; 9 (odd) input, 10 (even) button
def devices():
    put("devices", "serial-init",
        op(0, 1, 3, 0, 0x80) + op(0, 1, 0, 0, 12) + op(0, 1, 1, 0, 0) + op(0, 1, 3, 0, 3) +
        op(0, 1, 2, 0, 0xC7) + op(0, 1, 1, 0, 3) + op(0, 1, 0, 0, ord("h")) + op(0, 0, 5, 0) +
        op(9, 0, 3, 0, 0x41424344) + op(0, 0, 2, 0) + op(0, 0, 0, 0) + op(0, 1, 4, 0, 0x10))
    put("devices", "fw-cfg-read",
        op(2, 1, 0, 1, 0) + op(2, 0, 1, 0) * 4 + op(2, 1, 0, 1, 3) + op(2, 0, 1, 3) +
        op(2, 1, 0, 1, 0x19) + op(2, 0, 1, 2) + op(2, 1, 0, 1, 5) + op(2, 0, 1, 1))
    put("devices", "acpi-sleep",
        op(1, 1, 2, 1, 0x121) + op(10, 0, 0, 0) + op(1, 0, 0, 1) + op(1, 1, 0, 1, 0x100) +
        op(1, 0, 8, 2) + op(1, 1, 4, 1, (5 << 10) | (1 << 13)) + op(1, 0, 4, 1))
    put("devices", "rtc",
        op(3, 1, 0, 0, 0x0B) + op(3, 0, 1, 0) + op(3, 1, 1, 0, 0x06) + op(3, 1, 0, 0, 0) +
        op(3, 0, 1, 0) + op(3, 1, 0, 0, 0x80 | 0x0A) + op(3, 1, 1, 0, 0x55) + op(3, 0, 1, 0))
    put("devices", "testdev",
        op(4, 1, 0, 2, 0xDEADBEEF) + op(4, 0, 1, 0) + op(6, 1, 2, 1, 0x1234) + op(5, 1, 0, 2, 0x1000) +
        op(5, 1, 0, 2, 0x7FF000) + op(5, 1, 0, 2, 0x800000) + op(7, 1, 4, 2, 0x01010101) +
        op(7, 1, 4, 2, 0) + op(8, 1, 0xFFFC, 3, 0x11223344) + op(8, 0, 0xFFFE, 3) +
        op(4, 0, 3, 3, 0, below=True))


# balloon_state: the backend fields of a "virtio-balloon" section (balloon.c
# order; field: u16 tag, u8 type, u8 flags, u32 length, value padded to 8)
# for 16 MiB of RAM: a quiet balloon and one with history.
def field(tag, typ, value):
    if typ == 5:
        raw = value
    else:
        raw = struct.pack({1: "<B", 2: "<H", 3: "<I", 4: "<Q"}[typ], value)
    return struct.pack("<HBBI", tag, typ, 0, len(raw)) + raw + b"\0" * (-len(raw) % 8)


def balloon_state(num_pages=0, actual=0, flags=3, held=0, counters=(0,) * 9, have=0, mask=0,
                  stats=(0,) * 16, record=bytes(512), pending=0):
    t = 0x400
    out = field(t, 4, 0) + field(t + 1, 3, flags) + field(t + 2, 3, 1)
    out += field(t + 3, 3, num_pages) + field(t + 4, 3, actual) + field(t + 5, 3, 0)
    out += field(t + 6, 1, held) + field(t + 7, 2, 0)
    for i, v in enumerate(counters):
        out += field(t + 8 + i, 4, v)
    out += field(t + 17, 1, have) + field(t + 18, 4, 1500 * 10**6) + field(t + 19, 3, mask)
    out += field(t + 20, 5, struct.pack("<16Q", *stats)) + field(t + 21, 5, record) + field(t + 22, 1, pending)
    return out


put("balloon_state", "quiet", balloon_state())
put("balloon_state", "busy",
    balloon_state(num_pages=2048, actual=1024, counters=(1024, 512, 3, 8 << 20, 12 << 20, 4096, 2, 0, 123456),
                  have=1, mask=0x3F, stats=tuple(range(16)), record=b"\xff" * 128 + bytes(384), pending=1))


# ---- fuzz_pci: 8-byte operations { op, a, b, c, le32 value } ----------------
K_CF8, K_CFG1, K_ECAM, K_BAR, K_COMMON, K_VREGION, K_RAM, K_HOST = range(8)
SIZE = {1: 0, 2: 1, 4: 2, 8: 3}
BLK, NET, RNG, BALLOON = range(4)          # virtio devices (fuzz_pci_world.h)
SLOT = {BLK: 1, NET: 2, RNG: 3, BALLOON: 5}
TESTDEV = 4                                 # pci-testdev's slot, function index
MSIX_CAP = {BLK: 0x98, NET: 0x98, RNG: 0x88, BALLOON: 0x98}
PCICFG_CAP = {BLK: 0x84, NET: 0x84, RNG: 0x74, BALLOON: 0x84}
# Indexes into fuzz_pci.c's common[] table.
DFSELECT, DF, GFSELECT, GF, MSIXVEC, NUMQ, STATUS, CFGGEN, QSEL, QSIZE, QMSIX, QENABLE, QNOFF, \
    DESCLO, DESCHI, AVAILLO, AVAILHI, USEDLO, USEDHI = range(19)
ISR, DEVCFG, NOTIFY, MSIX = range(4)


def pop(kind, a=0, b=0, c=0, value=0, write=False, size=4, variant=False):
    b0 = kind | SIZE[size] << 3 | (0x20 if variant else 0) | (0x80 if write else 0)
    return struct.pack("<BBBBI", b0, a, b, c, value & 0xFFFFFFFF)


def cfg1(slot, reg, size=4, value=None):
    return pop(K_CFG1, slot, reg, 0, value or 0, value is not None, size)


def ecam(slot, reg, size=4, value=None):
    return pop(K_ECAM, slot, reg & 0xFF, reg >> 8, value or 0, value is not None, size)


def common(dev, field, value=None, ram=False):
    return pop(K_COMMON, dev, field, 1 if ram else 0, value or 0, value is not None)


def vregion(dev, region, off, size=4, value=None):
    return pop(K_VREGION, dev, region | (off >> 8) << 2, off & 0xFF, value or 0, value is not None, size)


def ram(gpa, data):
    """Guest RAM writes, 4 bytes each."""
    data = data + b"\0" * (-len(data) % 4)
    return b"".join(pop(K_RAM, (gpa + i) & 0xFF, (gpa + i) >> 8 & 0xFF, (gpa + i) >> 16,
                        struct.unpack_from("<I", data, i)[0], True) for i in range(0, len(data), 4))


def host(what, b=0, c=0, value=0):
    return pop(K_HOST, what, b, c, value)


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


NEXT, WRITE, INDIRECT = 1, 2, 4


def driver(dev, feats_lo, feats_hi=1, rings=(), qsize=16, msix=False):
    """A driver's setup of a virtio device through the common config;
    rings: (desc, avail, used) per queue."""
    ops = common(dev, STATUS, 0) + common(dev, STATUS, 1) + common(dev, STATUS, 3)
    ops += common(dev, DFSELECT, 0) + common(dev, DF) + common(dev, DFSELECT, 1) + common(dev, DF)
    ops += common(dev, GFSELECT, 0) + common(dev, GF, feats_lo) + common(dev, GFSELECT, 1) + common(dev, GF, feats_hi)
    ops += common(dev, STATUS, 11) + common(dev, STATUS)
    if msix:
        ops += ecam(SLOT[dev], MSIX_CAP[dev] + 2, 2, 0x8000)
        for e in range(len(rings) + 1):
            t = 0x3000 + 16 * e
            ops += vregion(dev, MSIX, t, 4, 0xFEE00000) + vregion(dev, MSIX, t + 8, 4, 0x40 + e) + \
                vregion(dev, MSIX, t + 12, 4, 0)
        ops += common(dev, MSIXVEC, 0)
    for q, (d, a, u) in enumerate(rings):
        ops += common(dev, QSEL, q) + common(dev, QSIZE) + common(dev, QSIZE, qsize)
        ops += common(dev, DESCLO, d) + common(dev, DESCHI, 0) + common(dev, AVAILLO, a) + \
            common(dev, AVAILHI, 0) + common(dev, USEDLO, u) + common(dev, USEDHI, 0)
        if msix:
            ops += common(dev, QMSIX, q + 1)
        ops += common(dev, QENABLE, 1) + common(dev, QENABLE)
    return ops + common(dev, STATUS, 15)


def kick(dev, q):
    return vregion(dev, NOTIFY, 4 * q, 2, q) + host(0)


def avail(idx, heads):
    return struct.pack("<HH", 0, idx) + b"".join(struct.pack("<H", h) for h in heads)


def pci_seeds():
    # Enumeration: IDs, header, class and capability pointer of every slot.
    enum = b""
    for slot in range(8):
        enum += cfg1(slot, 0) + cfg1(slot, 8) + cfg1(slot, 0x0E, 1) + cfg1(slot, 0x2C) + cfg1(slot, 0x34, 1)
    put("pci", "enumerate", enum)
    # The capability list of each virtio function, byte by byte, through ECAM.
    caps = b""
    for dev in (BLK, RNG):
        caps += b"".join(ecam(SLOT[dev], r, 4) for r in range(0x34, 0xB0, 4))
    put("pci", "capabilities", caps + ecam(1, 0x100) + ecam(1, 0xFFC) + cfg1(1, 0x40, 2) + cfg1(1, 0x41, 1))
    # BAR sizing (all-ones, read back, restore) and a move, then the BAR at its new place.
    sizing = b""
    for slot, reg, old in ((1, 0x10, 0xC0000000), (4, 0x10, 0xC000C000), (4, 0x14, 0xC001)):
        sizing += cfg1(slot, reg) + cfg1(slot, reg, 4, 0xFFFFFFFF) + cfg1(slot, reg) + cfg1(slot, reg, 4, old)
    sizing += cfg1(1, 0x10, 4, 0xC1000000) + pop(K_BAR, 1, 0x14, 0, 0) + common(BLK, NUMQ)
    sizing += cfg1(1, 0x04, 2, 0) + common(BLK, NUMQ) + cfg1(1, 0x04, 2, 7) + common(BLK, NUMQ)
    sizing += cfg1(4, 0x14, 4, 0xFFFFFFFF) + cfg1(4, 0x14) + cfg1(4, 0x14, 4, 0xC101)
    sizing += pop(K_BAR, 4 | 1 << 4, 0, 0, 0, True, 1) + pop(K_BAR, 4 | 1 << 4, 0, 0)
    sizing += cfg1(5, 0x10, 4, 0xF0000000) + cfg1(5, 0x10, 4, 0xC0010000)
    put("pci", "bar-sizing", sizing)
    # Raw mechanism #1 traffic, odd widths and offsets.
    raw = pop(K_CF8, 0, 0, 0, 0x80000800, True) + pop(K_CF8, 4) + pop(K_CF8, 6, size=2) + \
        pop(K_CF8, 1, size=1) + pop(K_CF8, 0, 0, 0, 0x80000000, True, 2) + pop(K_CF8, 7, size=8) + \
        pop(K_CF8, 0, 0, 0, 0x80010800, True) + pop(K_CF8, 4) + pop(K_CF8, 0, 0, 0, 0x80000900, True) + \
        pop(K_CF8, 5, 0, 0, 0xFFFF, True, 2) + pop(K_CFG1, 1 | 1 << 5, 0, 1, variant=True)
    put("pci", "cf8-raw", raw)
    # MSI-X: enable, program, mask, interrupt (pending), unmask (delivered), PBA.
    mx = ecam(1, 0x98 + 2, 2, 0x8000) + vregion(BLK, MSIX, 0, 4, 0xFEE00000) + vregion(BLK, MSIX, 8, 4, 0x41)
    mx += vregion(BLK, MSIX, 12, 4, 0) + host(1, 1, 0) + vregion(BLK, MSIX, 12, 4, 1) + host(1, 1, 0)
    mx += vregion(BLK, MSIX, 0x800, 4) + vregion(BLK, MSIX, 0x800, 8) + vregion(BLK, MSIX, 12, 4, 0)
    mx += ecam(1, 0x98 + 2, 2, 0xC000) + host(1, 1, 1) + ecam(1, 0x98 + 2, 2, 0x8000) + \
        vregion(BLK, MSIX, 0, 8, 0xFEE00000) + vregion(BLK, MSIX, 16, 2, 0) + host(1, 1, 65)
    put("pci", "msix", mx)
    # The virtio-rng driver, a buffer and a kick (with INTx), then the ISR.
    r0 = (0, 0x100, 0x200)
    rng = ram(0, desc(0x1000, 64, WRITE)) + ram(0x100, avail(1, [0]))
    rng += driver(RNG, 0, 1, [r0]) + kick(RNG, 0) + vregion(RNG, ISR, 0, 1) + common(RNG, STATUS, 0)
    put("pci", "virtio-rng", rng)
    # virtio-blk: a read, a write and a flush, with MSI-X; device config.
    blk = ram(0, desc(0x1000, 16, NEXT, 1) + desc(0x1100, 512, NEXT | WRITE, 2) + desc(0x1400, 1, WRITE) +
              desc(0x2000, 16, NEXT, 4) + desc(0x2100, 512, NEXT, 5) + desc(0x2400, 1, WRITE) +
              desc(0x3000, 16, NEXT, 7) + desc(0x3100, 1, WRITE))
    blk += ram(0x1000, struct.pack("<IIQ", 0, 0, 2)) + ram(0x2000, struct.pack("<IIQ", 1, 0, 3))
    blk += ram(0x3000, struct.pack("<IIQ", 4, 0, 0)) + ram(0x100, avail(3, [0, 3, 6]))
    blk += driver(BLK, 1 << 9, 1, [(0, 0x100, 0x200)], msix=True) + kick(BLK, 0) + host(0)
    blk += vregion(BLK, DEVCFG, 0, 8) + vregion(BLK, DEVCFG, 0x14, 4) + vregion(BLK, DEVCFG, 0x40, 1, 0)
    put("pci", "virtio-blk", blk)
    # virtio-net: a transmitted frame, a receive buffer and a frame from the wire.
    q0, q1 = (0, 0x100, 0x200), (0x400, 0x500, 0x600)
    net = ram(0, desc(0x2000, 1526, WRITE)) + ram(0x100, avail(1, [0]))
    net += ram(0x400, desc(0x3000, 12 + 60)) + ram(0x500, avail(1, [0])) + ram(0x3000, b"\0" * 12 + b"\xff" * 60)
    net += driver(NET, (1 << 5) | (1 << 16), 1, [q0, q1]) + kick(NET, 1) + kick(NET, 0)
    net += host(6, 0, 30, 0x01020304) + host(0) + vregion(NET, DEVCFG, 0, 4) + vregion(NET, DEVCFG, 6, 2)
    put("pci", "virtio-net", net)
    # virtio-balloon: inflate two pages, stats, a report; a new target; actual.
    qs = [(0x400 * q, 0x400 * q + 0x100, 0x400 * q + 0x200) for q in range(4)]
    bal = ram(0, desc(0x3000, 8)) + ram(0x100, avail(1, [0])) + ram(0x3000, struct.pack("<II", 0x20, 0x21))
    bal += ram(0x800, desc(0x3100, 20)) + ram(0x900, avail(1, [0])) + ram(0x3100, struct.pack("<HQHQ", 0, 1, 4, 2))
    bal += ram(0xC00, desc(0x30000, 0x4000, WRITE)) + ram(0xD00, avail(1, [0]))
    bal += driver(BALLOON, (1 << 1) | (1 << 5), 1, qs) + kick(BALLOON, 0) + kick(BALLOON, 2) + kick(BALLOON, 3)
    bal += host(4, 0, 0, 8) + host(5) + vregion(BALLOON, DEVCFG, 4, 4, 2) + vregion(BALLOON, DEVCFG, 0, 4)
    put("pci", "virtio-balloon", bal)
    # The PCI configuration access capability: common config through config space.
    cap = PCICFG_CAP[BLK]
    win = ecam(1, cap + 4, 1, 0) + ecam(1, cap + 8, 4, 0x14) + ecam(1, cap + 12, 4, 1) + ecam(1, cap + 16, 4, 1)
    win += ecam(1, cap + 16, 1) + ecam(1, cap + 8, 4, 0x12) + ecam(1, cap + 12, 4, 2) + ecam(1, cap + 16, 2)
    win += ecam(1, cap + 8, 4, 0x3000) + ecam(1, cap + 16, 4)
    put("pci", "virtio-pci-cfg-cap", win)
    # pci-testdev: every test on both BARs.
    td = b""
    for bar in (0, 1):
        for test in range(3):
            td += pop(K_BAR, TESTDEV | bar << 4, 0, 0, test, True, 1) + pop(K_BAR, TESTDEV | bar << 4, 4, 0)
            td += pop(K_BAR, TESTDEV | bar << 4, 0x40 + 4 * test, 0, 0xFA, True, 4)
            td += pop(K_BAR, TESTDEV | bar << 4, 12, 0) + pop(K_BAR, TESTDEV | bar << 4, 16, 0, size=8)
    put("pci", "pci-testdev", td)
    # Queue setup against the rules: enable before FEATURES_OK, bad sizes, reset.
    bad = common(NET, STATUS, 3) + common(NET, QSEL, 0) + common(NET, QENABLE, 1) + common(NET, STATUS)
    bad += common(NET, STATUS, 0) + common(NET, STATUS, 3) + common(NET, GF, 0) + common(NET, STATUS, 11)
    bad += common(NET, STATUS) + common(NET, QSEL, 9) + common(NET, QSIZE, 4) + common(NET, QSIZE)
    bad += common(NET, QSEL, 0) + common(NET, QSIZE, 3) + common(NET, QENABLE, 1) + common(NET, STATUS, 15)
    bad += common(NET, STATUS) + common(NET, QMSIX, 7) + common(NET, QMSIX) + common(NET, STATUS, 0)
    put("pci", "virtio-rules", bad)


# ---- fuzz_virtio: header, script, guest RAM ------------------------------------
def vq_layout(q, qs):
    d = q * (32 * qs + 64)
    a = d + 16 * qs
    return d, a, a + ((6 + 2 * qs + 3) & ~3)


class Ram:
    def __init__(self):
        self.b = bytearray()

    def put(self, gpa, data):
        if len(self.b) < gpa + len(data):
            self.b += bytes(gpa + len(data) - len(self.b))
        self.b[gpa:gpa + len(data)] = data

    def chain(self, q, qs, slot, descs, avail_heads):
        d, a, _ = vq_layout(q, qs)
        for i, x in enumerate(descs):
            self.put(d + 16 * (slot + i), x)
        self.put(a, avail(len(avail_heads), avail_heads))


def vseed(name, dev, ram_img, script=b"", ring=0, msix=False, pick=0xFF, qs=16):
    log2 = qs.bit_length() - 1
    hdr = bytes([dev | log2 << 2, ring | (4 if msix else 0), pick, len(script)])
    put("virtio", name, hdr + script + bytes(ram_img.b))


def doorbell(q):
    return bytes([q])


def virtio_seeds():
    qs = 16
    # rng: two buffers, one chained.
    r = Ram()
    r.chain(0, qs, 0, [desc(0x1000, 64, WRITE), desc(0x1100, 32, WRITE | NEXT, 2), desc(0x1200, 32, WRITE)], [0, 1])
    vseed("rng", RNG, r, doorbell(0))
    vseed("rng-msix-event-idx", RNG, r, doorbell(0) + bytes([0xC0, 0xC1]), ring=1, msix=True)
    # blk: read, write, flush, get-id, discard, write zeroes, a bad type.
    r = Ram()
    base, descs, heads = 0x1000, [], []
    reqs = [(0, 1, 512), (1, 2, 512), (4, 0, 0), (8, 0, 20), (11, 0, 16), (13, 0, 16), (99, 0, 0)]
    for i, (typ, sector, dlen) in enumerate(reqs):
        hdr_at, data_at, st_at = base + 0x400 * i, base + 0x400 * i + 0x20, base + 0x400 * i + 0x3F0
        r.put(hdr_at, struct.pack("<IIQ", typ, 0, sector))
        n = len(descs)
        heads.append(n)
        if typ in (11, 13):
            r.put(data_at, struct.pack("<QII", 4, 8, 0))
            descs += [desc(hdr_at, 16, NEXT, n + 1), desc(data_at, dlen, NEXT, n + 2), desc(st_at, 1, WRITE)]
        elif dlen:
            wflag = WRITE if typ in (0, 8) else 0
            descs += [desc(hdr_at, 16, NEXT, n + 1), desc(data_at, dlen, NEXT | wflag, n + 2), desc(st_at, 1, WRITE)]
        else:
            descs += [desc(hdr_at, 16, NEXT, n + 1), desc(st_at, 1, WRITE)]
    r.chain(0, 32, 0, descs, heads)
    vseed("blk", BLK, r, doorbell(0) + doorbell(0), qs=32)
    # blk through an indirect table, with EVENT_IDX; reset with I/O in flight.
    r = Ram()
    r.put(0x2000, desc(0x1000, 16, NEXT, 1) + desc(0x1100, 1024, NEXT | WRITE, 2) + desc(0x1600, 1, WRITE))
    r.put(0x1000, struct.pack("<IIQ", 0, 0, 4))
    r.chain(0, qs, 0, [desc(0x2000, 48, INDIRECT)], [0])
    vseed("blk-indirect", BLK, r, doorbell(0) + bytes([0xC1, 0x00]), ring=3)
    # net: receive buffers and a frame from the wire; two frames to send.
    r = Ram()
    r.chain(0, qs, 0, [desc(0x1000, 1526, WRITE), desc(0x1800, 12, WRITE | NEXT, 2), desc(0x1900, 1514, WRITE)], [0, 1])
    d1, a1, _ = vq_layout(1, qs)
    r.put(0x2000, b"\0" * 12 + b"\xff" * 6 + b"\x52\x54\0\x12\x34\x56\x08\x00" + b"\x45" * 46)
    r.put(d1, desc(0x2000, 72) + desc(0x2000, 12, NEXT, 2) + desc(0x200C, 60))
    r.put(a1, avail(2, [0, 1]))
    vseed("net", NET, r, doorbell(1) + bytes([0x40 | 2]) + doorbell(0) + bytes([0x40 | 20]), pick=0x7F)
    vseed("net-msix", NET, r, doorbell(0) + bytes([0x40 | 1, 0x80, 0xC1, 0x41, 0x01]), msix=True, ring=1, pick=0x04)
    # balloon (stats, deflate on OOM, reporting: queues inflate, deflate, stats, report).
    r = Ram()
    r.chain(0, qs, 0, [desc(0x1000, 16)], [0])
    r.put(0x1000, struct.pack("<IIII", 0x20, 0x21, 0x22, 0x7FFFFFFF))
    r.chain(1, qs, 0, [desc(0x1010, 8)], [0])
    r.put(0x1010, struct.pack("<II", 0x21, 0x22))
    r.chain(2, qs, 0, [desc(0x1100, 30)], [0])
    r.put(0x1100, struct.pack("<HQHQHQ", 0, 4096, 4, 1 << 20, 7, 1 << 30))
    r.chain(3, qs, 0, [desc(0x30000, 0x4000, WRITE), desc(0x10000, 0x2000, WRITE | NEXT, 2), desc(0x1234, 100, WRITE)], [0, 1])
    vseed("balloon", BALLOON, r, doorbell(0) + doorbell(1) + doorbell(2) + bytes([0x81, 0x44]) + doorbell(3), pick=0x0B)
    vseed("balloon-poison", BALLOON, r, doorbell(3) + bytes([0x40 | 8, 0xC5]) + doorbell(0), pick=0x0F, msix=True)


# ---- fuzz_devstate: edits { le16 field, op, arg, le32 value } of a real save ---------
def devstate_seeds():
    put("devstate", "unchanged", b"")
    names = ["set-low", "set-high", "flip-bit", "drop-field", "field-twice", "blob-byte", "blob-length",
             "section"]
    for op, name in enumerate(names):
        edits = b""
        for i, idx in enumerate((3, 17, 40, 90, 150, 230)):
            edits += struct.pack("<HBBI", idx, op, (i * 37 + 1) & 0xFF, (0xFFFFFFFF if i & 1 else i * 7) & 0xFFFFFFFF)
        put("devstate", name, edits)


# ---- fuzz_cpumodel: byte 0 the host (0 Intel, 1 AMD, 2 kvm_pvm; 4 PMU, 8 pvm), the spec ---
def cpumodel_seeds():
    for name, host, spec in (("host", 4, "host"), ("x86-64", 0, "x86-64"), ("v2-flags", 4, "x86-64-v2,+avx,-sse4_2"),
                             ("v4-amd", 5, "x86-64-v4,-avx512f"), ("host-no-pmu", 4, "host,-pmu"),
                             ("pvm-host", 14, "host,+xsave,-cx16"), ("readd", 0, "x86-64-v3,-avx,+avx,+pmu")):
        put("cpumodel", name, bytes([host]) + spec.encode())
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src", "arch", "x86", "cpufeat_list.h")
    names = re.findall(r'^X\(\w+, "([^"]+)"', open(src).read(), re.M)
    with open(os.path.join(os.path.dirname(__file__), "fuzz_cpumodel.dict"), "w") as f:
        f.write("# Model and feature names of the --cpu grammar (src/arch/x86/cpumodel.c,\n"
                "# cpufeat_list.h), for libFuzzer's -dict. tests/fuzz/make_seeds.py writes it.\n")
        for m in ("host", "x86-64", "x86-64-v1", "x86-64-v2", "x86-64-v3", "x86-64-v4"):
            f.write('"%s"\n' % m)
        f.write('",+pmu"\n",-pmu"\n')
        for n in names:
            f.write('",+%s"\n",-%s"\n' % (n, n))


put("boot", "bzimage", bzimage())
put("boot", "bzimage-old-protocol", bzimage(protocol=0x205, xloadflags=0))
put("boot", "multiboot-aout", mb_aout())
put("boot", "multiboot-elf32", mb_elf32())
put("multiboot", "aout", mb_input(mb_aout()))
put("multiboot", "elf32", mb_input(mb_elf32()))
put("multiboot", "elf32-no-module", mb_input(mb_elf32(), module=b""))
devices()
pci_seeds()
virtio_seeds()
devstate_seeds()
cpumodel_seeds()
