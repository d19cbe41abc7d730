/* Exception entry stubs, the CPL3 return gate, run_user's ring switch and a
 * minimal setjmp/longjmp. Offsets match struct exc_frame in kit.h. */
#define KERNEL_DS 0x18
#define USER_DS   0x23
#define USER_CS   0x2b

	.text
	.code64

/* Vectors with an error code: 8, 10-14, 17, 21, 29, 30. */
.macro EXC n
	.balign 16
exc_stub_\n:
	.if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushq $0
	.endif
	pushq $\n
	jmp exc_common
.endm

	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	EXC \n
	.endr

exc_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi
	call exc_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl kit_exc_stubs
kit_exc_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_stub_\n
	.endr
	.text

/* long kit_user_enter(fn %rdi, arg %rsi, user_rsp %rdx, saved_rsp *%rcx,
 *                     tss_rsp0 *%r8): saves the callee-saved registers, points
 * TSS.RSP0 just below them and irets to kit_user_trampoline at CPL3. Comes
 * back through kit_user_resume with the result in %rax. */
	.globl kit_user_enter
	.type kit_user_enter, @function
kit_user_enter:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, (%rcx)
	mov %rsp, %rax
	and $-16, %rax
	mov %rax, (%r8)
	pushq $USER_DS
	pushq %rdx
	pushq kit_user_rflags(%rip)	/* 0x2 unless irq_wait asks for IF */
	pushq $USER_CS
	lea kit_user_trampoline(%rip), %rax
	pushq %rax
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	iretq
	.size kit_user_enter, . - kit_user_enter

/* CPL3: fn(arg), then back to the kernel through the DPL3 gate. Where the
 * host cannot deliver software interrupts from CPL3 (kvm_pvm raises #UD on
 * any `int n` but int3), exc_dispatch treats #UD/#GP at kit_user_int as the
 * same return. */
	.globl kit_user_trampoline, kit_user_int
kit_user_trampoline:
	mov %rdi, %rax
	mov %rsi, %rdi
	call *%rax
kit_user_int:
	int $0x80
	ud2

/* IDT vector 0x80 (DPL 3): %rax = fn's result. */
	.globl kit_user_return_stub
	.type kit_user_return_stub, @function
kit_user_return_stub:
	cld
	mov %rax, %rdi
	sub $8, %rsp
	call kit_user_return
	ud2
	.size kit_user_return_stub, . - kit_user_return_stub

/* noreturn void kit_user_resume(saved_rsp %rdi, value %rsi) */
	.globl kit_user_resume
	.type kit_user_resume, @function
kit_user_resume:
	mov %rdi, %rsp
	mov $KERNEL_DS, %eax
	mov %eax, %ss
	mov %eax, %ds
	mov %eax, %es
	mov %rsi, %rax
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size kit_user_resume, . - kit_user_resume

/* int kit_setjmp(struct kit_jmp_buf *) / kit_longjmp(jb, val) */
	.globl kit_setjmp
	.type kit_setjmp, @function
kit_setjmp:
	mov %rbx, 0(%rdi)
	mov %rbp, 8(%rdi)
	mov %r12, 16(%rdi)
	mov %r13, 24(%rdi)
	mov %r14, 32(%rdi)
	mov %r15, 40(%rdi)
	lea 8(%rsp), %rax
	mov %rax, 48(%rdi)
	mov (%rsp), %rax
	mov %rax, 56(%rdi)
	xor %eax, %eax
	ret
	.size kit_setjmp, . - kit_setjmp

	.globl kit_longjmp
	.type kit_longjmp, @function
kit_longjmp:
	mov %esi, %eax
	test %eax, %eax
	jnz 1f
	inc %eax
1:	mov 0(%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov 48(%rdi), %rsp
	jmp *56(%rdi)
	.size kit_longjmp, . - kit_longjmp

	.section .note.GNU-stack, "", @progbits
