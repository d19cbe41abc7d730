#!/usr/bin/env python3
"""Compare the CPUID a guest printed (tests/guest/kernels/cpuid.c) with
`ember cpu --json`. Usage: cpuid_compare.py JSON GUEST_OUTPUT. Prints one
line per problem and exits 1 when there is any.

Bits the guest OS or KVM change at run time are not compared: leaf 1
ECX[27] OSXSAVE, leaf 7 ECX[4] OSPKE (set from CR4), 0xD.0 EBX and 0xD.1
EBX (XSAVE sizes for the current XCR0/XSS). Leaves 0xB/0x1F answer
subleaves past the listed ones with ECX = subleaf (KVM), so only listed
subleaves are compared there."""
import json
import re
import sys

DYNAMIC = {(1, 0, 'ecx'): 1 << 27, (7, 0, 'ecx'): 1 << 4, (0xd, 0, 'ebx'): 0xffffffff,
           (0xd, 1, 'ebx'): 0xffffffff}
REGS = ('eax', 'ebx', 'ecx', 'edx')


def main():
    model = json.load(open(sys.argv[1]))
    guest = {}
    for line in open(sys.argv[2], errors='replace'):
        m = re.match(r'CPUID ([0-9a-f]{8})\.([0-9a-f]{2}): ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})', line)
        if m:
            guest[(int(m[1], 16), int(m[2], 16))] = dict(zip(REGS, (int(m[i], 16) for i in range(3, 7))))
    problems = []
    if not guest:
        problems.append('the guest printed no CPUID lines')
    listed = set()
    for e in model['cpuid']:
        key = (e['function'], e['index'] if e['indexed'] else 0)
        listed.add(key)
        g = guest.get(key)
        if g is None:
            problems.append('leaf %#x.%u is in ember cpu but the guest did not print it' % key)
            continue
        for r in REGS:
            mask = ~DYNAMIC.get((key[0], key[1], r), 0) & 0xffffffff
            if (g[r] & mask) != (e[r] & mask):
                problems.append('leaf %#x.%u %s: guest %#010x, ember cpu %#010x' % (key[0], key[1], r, g[r], e[r]))
    indexed = {e['function'] for e in model['cpuid'] if e['indexed']}
    for key, g in sorted(guest.items()):
        if key in listed or not any(g.values()):
            continue
        if key[0] in (0xb, 0x1f) and key[0] in indexed:
            continue
        problems.append('leaf %#x.%u: the guest sees %s, ember cpu lists nothing' %
                        (key[0], key[1], ' '.join('%08x' % g[r] for r in REGS)))
    for p in problems[:20]:
        print(p)
    print('# compared %d leaves, %d guest lines' % (len(listed), len(guest)))
    return 1 if problems else 0


sys.exit(main())
