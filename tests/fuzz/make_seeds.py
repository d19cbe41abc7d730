#!/usr/bin/env python3
"""Writes the synthetic seed inputs of the loader and device fuzz targets
into tests/fuzz/corpus/{boot,multiboot,devices,balloon_state}/ (the stripped guest
kernels there are copied by hand: strip -o ... build/guest/...).
Run from the repository root: python3 tests/fuzz/make_seeds.py"""
import os
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

put("boot", "bzimage", bzimage())
put("boot", "bzimage-old-protocol", bzimage(protocol=0x205, xloadflags=0))
put("boot", "multiboot-aout", mb_aout())
put("boot", "multiboot-elf32", mb_elf32())
put("multiboot", "aout", mb_input(mb_aout()))
put("multiboot", "elf32", mb_input(mb_elf32()))
put("multiboot", "elf32-no-module", mb_input(mb_elf32(), module=b""))
devices()
