#!/usr/bin/env bash
# --bios-state (part of --test-devices): a multiboot kernel linked at 32 KiB
# like kvm-unit-tests' realmode.flat drops to real mode and finds what a PC
# BIOS leaves: the BDA (COM1 at 0x400), IVT vector 8 in the F segment, and
# timer ticks (PIT channel 0 -> 8259 IRQ 0 -> vector 8 -> the BIOS handler,
# which counts them at 0x46c and sends the EOI) while it waits with STI; HLT.
# Without the option the same kernel must fail.
source "$(dirname "$0")/lib.sh"

cat >"$TMP/rm.S" <<'ASM'
	.code32
	.align 4
	.long 0x1BADB002, 0, -0x1BADB002
	.globl _start
_start:
	lgdt gdtr
	ljmp $8, $1f
	.code16
1:	mov $16, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %cr0, %eax
	and $~1, %eax
	mov %eax, %cr0
	ljmp $0, $2f
2:	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %sp
	mov $2, %dl                     /* exit code 2: no BDA */
	cmpw $0x3f8, 0x400
	jne fail
	mov $3, %dl                     /* 3: vector 8 not in the F segment */
	cmpw $0xf000, 0x22
	jne fail
	mov $4, %dl                     /* 4: no ticks */
	mov 0x46c, %ebx
	mov $50, %ecx
3:	sti
	hlt
	cli
	mov 0x46c, %eax
	sub %ebx, %eax
	cmp $3, %eax
	jae pass
	dec %ecx
	jnz 3b
fail:	mov %dl, %al
	out %al, $0xf4
pass:	xor %al, %al
	out %al, $0xf4
4:	hlt
	jmp 4b
	.align 8
gdt:	.quad 0, 0x00009b000000ffff, 0x000093000000ffff
gdtr:	.word 23
	.long gdt
ASM
gcc -m32 -c "$TMP/rm.S" -o "$TMP/rm.o" && ld -m elf_i386 -N -Ttext=0x8000 -e _start "$TMP/rm.o" -o "$TMP/rm.flat" ||
	fail "bios-state: build the real-mode kernel"

require_kvm "bios-state: real mode sees the BDA, the IVT and timer ticks" \
	"bios-state: without it the kernel finds no BIOS" "bios-state: part of --test-devices"

run_vm "$TMP/out" 30 --kernel "$TMP/rm.flat" --debug-exit --bios-state
expect_eq "bios-state: real mode sees the BDA, the IVT and timer ticks" "$RC" 1
run_vm "$TMP/out" 30 --kernel "$TMP/rm.flat" --debug-exit
expect_eq "bios-state: without it the kernel finds no BIOS" "$RC" 5
run_vm "$TMP/out" 30 --kernel "$TMP/rm.flat" --test-devices
expect_eq "bios-state: part of --test-devices" "$RC" 1
