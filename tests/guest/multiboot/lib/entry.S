/* Multiboot v1 entry (32-bit protected mode, paging off, EAX = 0x2BADB002,
 * EBX = boot information), the real-mode SIPI trampoline for APs, and the
 * exception/interrupt stubs. */
#define MB_MAGIC 0x1BADB002
#define STACK_SIZE 8192
#define MAX_CPUS 64

	.section .text.entry, "ax"
	.code32
	.align 4
mb_header:
	.long MB_MAGIC, 0, -MB_MAGIC

	.globl _start
_start:
	cli
	mov %eax, mb_magic
	mov %ebx, mb_info
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $stacks + STACK_SIZE, %esp
	xor %ebp, %ebp
	call kit_main
2:	hlt
	jmp 2b

/* APs: copied to physical 0 and started there by SIPI vector 0, in real
 * mode with CS = 0. They load the kit's GDT, enter protected mode, take a
 * stack by index and call ap_entry(). */
	.code16
	.globl sipi_start, sipi_end
sipi_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl sipi_gdt_desc - sipi_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $ap_start32
sipi_gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
sipi_end:

	.code32
ap_start32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss
	mov $1, %eax
	lock xadd %eax, ap_next
	lea 2(%eax), %ecx
	imul $STACK_SIZE, %ecx
	lea stacks(%ecx), %esp
	push %eax
	call ap_entry
3:	hlt
	jmp 3b

/* Vector stubs: push a zero error code where the CPU pushes none, then the
 * vector, and go to the common entry. */
#define HAS_ERR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)
	.globl isr_table
	.section .rodata
isr_table:
	.section .text
	.altmacro
.macro stub v
	.section .text
isr_\v:
	.if !HAS_ERR(\v)
	push $0
	.endif
	push $\v
	jmp isr_common
	.section .rodata
	.long isr_\v
.endm
	i = 0
	.rept 256
	stub %i
	i = i + 1
	.endr

	.section .text
isr_common:
	pusha
	push %esp
	call isr_dispatch
	add $4, %esp
	popa
	add $8, %esp
	/* Same privilege level, so IRET would only pop EIP, CS and EFLAGS; do
	 * that with POPF and RET, because kvm_pvm cannot emulate a 32-bit IRET
	 * in guest kernel mode. Stack: [eip][cs][eflags] -> [eflags][eip]. */
	push %eax
	mov 4(%esp), %eax
	xchg %eax, 12(%esp)
	mov %eax, 8(%esp)
	pop %eax
	add $4, %esp
	popf
	ret

	.data
	.align 8
	.globl gdt, gdt_desc
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff        /* 0x08: 32-bit code */
	.quad 0x00cf93000000ffff        /* 0x10: data */
	.quad 0x00cffb000000ffff        /* 0x18: user code */
	.quad 0x00cff3000000ffff        /* 0x20: user data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
	.globl mb_magic, mb_info, ap_next
mb_magic: .long 0
mb_info:  .long 0
ap_next:  .long 0

	.bss
	.align 16
	.globl stacks
stacks:	.skip STACK_SIZE * (MAX_CPUS + 1)

	.section .note.GNU-stack, "", @progbits
