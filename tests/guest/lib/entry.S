/* Entry point of every guest-kit kernel, and the "Ember" ELF note that makes
 * Ember start all vCPUs here (64-bit mode, CPL0, paging on, IF=0, RSI =
 * boot_params, RSP undefined). Each CPU finds its index from the initial
 * APIC ID (CPUID.1:EBX[31:24]), takes its own stack and calls
 * kit_start(cpu, boot_params). */
#define KIT_MAX_CPUS   64
#define KIT_STACK_SHIFT 15     /* 32 KiB per CPU, see kit.h */

	.section .note.ember, "a", @note
	.balign 4
	.long 6                 /* n_namesz: "Ember\0" */
	.long 4                 /* n_descsz */
	.long 0x454d0001        /* n_type: guest-kit kernel */
	.asciz "Ember"
	.balign 4
	.long 0                 /* desc */
	.balign 4

	.section .text.entry, "ax"
	.code64
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	mov %rsi, %r15
	mov $1, %eax
	xor %ecx, %ecx
	cpuid
	shr $24, %ebx
	cmp $KIT_MAX_CPUS, %ebx
	jae 1f
	mov %ebx, %edi
	lea 1(%rbx), %rax
	shl $KIT_STACK_SHIFT, %rax
	lea kit_stacks(%rip), %rsp
	add %rax, %rsp
	mov %r15, %rsi
	xor %ebp, %ebp
	call kit_start
1:	cli
	hlt
	jmp 1b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
