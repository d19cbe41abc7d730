/* A second way in, for QEMU (-kernel with a PVH ELF note): QEMU enters
 * pvh_start32 in 32-bit protected mode, paging off, EBX = struct
 * hvm_start_info. We identity-map 0-4 GiB, enter long mode, turn the start
 * info into a Linux zero page (pvh.c) and join the Ember path at _start
 * with RSI = that page. Only the BSP comes this way (QEMU -smp 1). Used by
 * bench/blk.sh to run the same kernel under QEMU. */
	.section .note.ember, "a", @note
	.balign 4
	.long 4                 /* n_namesz: "Xen\0" */
	.long 4                 /* n_descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

	.section .text
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movl %ebx, pvh_start_info
	/* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs; PD entries: 2 MiB pages */
	movl $pvh_pdpt + 3, pvh_pml4
	movl $pvh_pd + 3, %eax
	movl $pvh_pdpt, %edi
	movl $4, %ecx
1:	movl %eax, (%edi)
	addl $4096, %eax
	addl $8, %edi
	loop 1b
	movl $pvh_pd, %edi
	movl $0x83, %eax        /* present, writable, 2 MiB */
	xorl %edx, %edx
	movl $2048, %ecx
2:	movl %eax, (%edi)
	movl %edx, 4(%edi)
	addl $0x200000, %eax
	adcl $0, %edx
	addl $8, %edi
	loop 2b
	movl %cr4, %eax
	orl $0x20, %eax         /* PAE */
	movl %eax, %cr4
	movl $pvh_pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx  /* EFER.LME */
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax   /* PG | PE */
	movl %eax, %cr0
	lgdt pvh_gdtr
	ljmp $0x10, $pvh_start64

	.code64
pvh_start64:
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	leaq pvh_stack_top(%rip), %rsp
	movl pvh_start_info(%rip), %edi
	call kit_pvh_boot_params
	movq %rax, %rsi
	jmp _start

	.section .rodata
	.balign 8
pvh_gdt:
	.quad 0, 0
	.quad 0x00af9a000000ffff        /* 0x10: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x18: data */
pvh_gdtr:
	.word pvh_gdtr - pvh_gdt - 1
	.long pvh_gdt

	.section .bss
	.balign 4096
pvh_pml4: .skip 4096
pvh_pdpt: .skip 4096
pvh_pd:   .skip 4 * 4096
pvh_stack: .skip 4096
pvh_stack_top:
pvh_start_info: .skip 8

	.section .note.GNU-stack, "", @progbits
