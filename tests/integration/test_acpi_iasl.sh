#!/usr/bin/env bash
# The ACPI tables Ember builds (written by `build/unit/test_dsdt --dump`, for
# a VM with --cpus 4 --rtc --fw-cfg), read by ACPICA, the interpreter Linux
# runs: iasl disassembles every table and the DSDT's ASL compiles back
# without errors or warnings; acpiexec loads the namespace and decodes the
# host bridge's _CRS, the _PRT and the link devices' interrupts the way the
# kernel's resource code does. Needs acpica-tools (tools/install-deps.sh).
# test-host: none
source "$(dirname "$0")/lib.sh"

checks=("acpi: tables dumped" "acpi: iasl disassembles every table" "acpi: DSDT names PCI0 (PNP0A08, PNP0A03)"
	"acpi: PCI0 _CRS windows" "acpi: PCI0 _PRT" "acpi: COM1, RTC, FWCF described" "acpi: DSDT ASL recompiles cleanly"
	"acpi: acpiexec loads the namespace" "acpi: acpiexec decodes PCI0 resources" "acpi: acpiexec resolves _PRT links"
	"acpi: link interrupts level, active high, shared")
if ! command -v iasl >/dev/null || ! command -v acpiexec >/dev/null; then
	for c in "${checks[@]}"; do skip "$c" "acpica-tools not installed"; done
	exit 0
fi
DUMP=$ROOT/build/unit/test_dsdt
if [ ! -x "$DUMP" ]; then
	for c in "${checks[@]}"; do skip "$c" "build/unit/test_dsdt not built (make unit)"; done
	exit 0
fi

cd "$TMP"
if "$DUMP" --dump "$TMP" && [ -s DSDT.aml ] && [ -s FACP.aml ] && [ -s APIC.aml ] && [ -s MCFG.aml ]; then
	pass "acpi: tables dumped"
else
	fail "acpi: tables dumped" "$(ls "$TMP")"
	exit 0
fi

bad=""
for t in DSDT FACP APIC MCFG; do
	iasl -d "$t.aml" >"$t.log" 2>&1 && [ -s "$t.dsl" ] || bad="$bad $t"
	grep -Eqi '^\s*(\*\*\*\*|error|warning)' "$t.dsl" "$t.log" && bad="$bad $t"
done
if [ -z "$bad" ]; then pass "acpi: iasl disassembles every table"; else
	fail "acpi: iasl disassembles every table" "trouble with$bad"; cat DSDT.log | sed 's/^/#   /' | tail -n 20; fi

# One line per check: squeeze the ASL's whitespace so patterns can span lines.
tr -s ' \n' ' ' <DSDT.dsl >flat.dsl
flat_has() {  # NAME ERE...: every ERE matches the flattened DSDT
	local name=$1 pat; shift
	for pat in "$@"; do
		if ! grep -Eq -- "$pat" flat.dsl; then fail "$name" "no match for '$pat'"; return; fi
	done
	pass "$name"
}
flat_has "acpi: DSDT names PCI0 (PNP0A08, PNP0A03)" \
	'Scope \(\\_SB\) \{ Device \(PCI0\) \{ Name \(_HID, EisaId \("PNP0A08"\)' \
	'Name \(_CID, EisaId \("PNP0A03"\)' 'Name \(_SEG, Zero\)' 'Name \(_BBN, Zero\)' 'Name \(_UID, Zero\)'
flat_has "acpi: PCI0 _CRS windows" \
	'WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, // Granularity 0x0000, // Range Minimum 0x0000, // Range Maximum' \
	'IO \(Decode16, 0x0CF8, // Range Minimum 0x0CF8, // Range Maximum 0x01, // Alignment 0x08, // Length' \
	'WordIO \(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000, // Granularity 0xC000, // Range Minimum 0xFFFF, // Range Maximum' \
	'DWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0x00000000, // Granularity 0xC0000000, // Range Minimum 0xDFFFFFFF, // Range Maximum' \
	'QWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0x0000000000000000, // Granularity 0x0000008000000000, // Range Minimum 0x0000008FFFFFFFFF, // Range Maximum'
flat_has "acpi: PCI0 _PRT" 'Name \(_PRT, Package \(0x20\)' \
	'Package \(0x04\) \{ 0x0001FFFF, Zero, \\_SB.GSIB, Zero \}' \
	'Package \(0x04\) \{ 0x001FFFFF, Zero, \\_SB.GSIH, Zero \}'
flat_has "acpi: COM1, RTC, FWCF described" \
	'Device \(COM1\) \{ Name \(_HID, EisaId \("PNP0501"\)' \
	'IO \(Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x01, // Alignment 0x08, // Length \) IRQNoFlags \(\) \{4\}' \
	'Device \(RTC\) \{ Name \(_HID, EisaId \("PNP0B00"\)' \
	'Device \(FWCF\) \{ Name \(_HID, "QEMU0002"\)' \
	'Name \(_S5, Package \(0x04\) // _S5_: S5 System State \{ 0x05, 0x05, Zero, Zero \}'

iasl -p recompiled DSDT.dsl >recompile.log 2>&1
expect_grep "acpi: DSDT ASL recompiles cleanly" 'Compilation successful\. 0 Errors, 0 Warnings' recompile.log

timeout 60 acpiexec -b 'resources \_SB.PCI0; resources \_SB.GSIA; resources \_SB.GSIH' DSDT.aml >exec.log 2>&1
expect_grep "acpi: acpiexec loads the namespace" '1 ACPI AML tables successfully acquired and loaded' exec.log
tr -s ' \n' ' ' <exec.log >flat.log
ok=1
for pat in 'Resource Type : Bus Number Range .{0,200}Address Minimum : 0000 .{0,40}Address Maximum : 0000' \
	'Resource Type : I/O Range .{0,300}Address Minimum : C000 .{0,40}Address Maximum : FFFF' \
	'Address Minimum : C0000000 .{0,40}Address Maximum : DFFFFFFF' \
	'Address Minimum : 0000008000000000 .{0,40}Address Maximum : 0000008FFFFFFFFF'; do
	grep -Eq -- "$pat" flat.log || { ok=0; fail "acpi: acpiexec decodes PCI0 resources" "no '$pat'"; break; }
done
[ $ok = 1 ] && pass "acpi: acpiexec decodes PCI0 resources"
links=$(grep -cE 'Source : \\_SB_\.GSI[A-H]$' exec.log)
expect_eq "acpi: acpiexec resolves _PRT links" "$links" 32
irqs=$(grep -oE 'Triggering : Level Polarity : ActiveHigh Sharing : Shared .{0,120}Dword00 : 000000(10|17)' flat.log |
	grep -c Dword00)
# Each link's _CRS and _PRS, GSIA (16) and GSIH (23).
if [ "$irqs" -ge 4 ]; then pass "acpi: link interrupts level, active high, shared"; else
	fail "acpi: link interrupts level, active high, shared" "found $irqs"; fi
