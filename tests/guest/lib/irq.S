/* Entry stubs for device interrupt vectors IRQ_VEC_BASE.. (see pci.c):
 * save the caller-saved registers, kit_irq_dispatch(vector), iretq. */
#define IRQ_VEC_BASE 0x40

	.text
	.code64
.macro IRQ n
	.balign 16
irq_stub_\n:
	pushq $(IRQ_VEC_BASE + \n)
	jmp irq_common
.endm
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	IRQ \n
	.endr

irq_common:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	push %rbx
	cld
	mov 80(%rsp), %rdi
	mov %rsp, %rbx
	and $-16, %rsp
	call kit_irq_dispatch
	mov %rbx, %rsp
	pop %rbx
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	add $8, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl kit_irq_stubs
kit_irq_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	.quad irq_stub_\n
	.endr

	.section .note.GNU-stack, "", @progbits
