/* The smallest useful guest for start-up timing: write "ok\n" to the serial
 * port, then exit through isa-debug-exit (port 0xf4). Built twice: as an
 * ELF64 with the Ember note for Ember, and with a multiboot header (32-bit
 * entry) for QEMU, so both VMMs run the same handful of instructions. */
#ifdef MULTIBOOT
	.section .multiboot, "a"
	.balign 4
	.long 0x1BADB002, 0, -0x1BADB002
	.code32
#else
	.section .note.ember, "a"
	.balign 4
	.long 6, 4, 0x454d0001
	.asciz "Ember"
	.balign 4
	.long 0
	.code64
#endif
	.text
	.globl _start
_start:
	mov $0x3f8, %dx
	mov $'o', %al
	out %al, %dx
	mov $'k', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
	mov $0xf4, %dx
	xor %eax, %eax
	out %eax, %dx
1:	hlt
	jmp 1b
