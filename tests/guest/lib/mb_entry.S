/* The multiboot way in (a kernel's .flat build; see mb_header.S): the
 * loader (Ember, QEMU, GRUB) enters kit_mb_start32 in 32-bit protected
 * mode, paging off, EAX = 0x2BADB002, EBX = the boot information, and only
 * on the BSP. We switch to long mode on boot page tables built at link time
 * (an identity map of 0-4 GiB in 2 MiB pages: no loop to run, which counts
 * where CPL0 code is emulated), let multiboot.c turn the boot information
 * into the zero page the kit reads, and join the Ember path at _start.
 * The APs are woken later by INIT/SIPI (multiboot.c) at kit_sipi_start,
 * copied to physical 0: real mode -> protected mode -> long mode -> _start.
 * The .elf build carries this code too, unused. */
#define BOOT_CS32 0x08
#define BOOT_CS64 0x10          /* KERNEL_CS in kit.h */
#define BOOT_DS   0x18          /* KERNEL_DS */

/* From 32-bit protected mode (paging off, our GDT loaded) into IA-32e
 * mode on the boot page tables; a far jump to a 64-bit selector follows. */
.macro ENTER_LONG_MODE
	mov %cr4, %eax
	or $0x20, %eax                  /* PAE */
	mov %eax, %cr4
	mov $kit_boot_pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx           /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov $0x80000033, %eax           /* PG | NE | ET | MP | PE, as Ember's 64-bit */
	mov %eax, %cr0                  /* entry; CD | NW off (INIT leaves an AP with them) */
.endm

.macro DATA_SEGMENTS
	mov $BOOT_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss
.endm

	.text
	.code32
	.globl kit_mb_start32
	.type kit_mb_start32, @function
kit_mb_start32:
	cli
	cld
	mov %eax, kit_mb_magic
	mov %ebx, kit_mb_info_phys
	lgdt kit_boot_gdtr
	ENTER_LONG_MODE
	ljmp $BOOT_CS64, $1f
	.code64
1:	DATA_SEGMENTS
	lea kit_mb_stack_top(%rip), %rsp
	xor %ebp, %ebp
	call kit_mb_boot                /* -> the zero page */
	mov %rax, %rsi
	jmp _start
	.size kit_mb_start32, . - kit_mb_start32

/* An AP, from the trampoline: protected mode, flat segments, paging off. */
	.code32
kit_mb_ap32:
	DATA_SEGMENTS
	ENTER_LONG_MODE
	ljmp $BOOT_CS64, $1f
	.code64
1:	DATA_SEGMENTS
	mov kit_mb_zero_page(%rip), %rsi
	jmp _start

/* Real mode at 0000:0000 (SIPI vector 0), copied there by multiboot.c. */
	.code16
	.globl kit_sipi_start, kit_sipi_end
kit_sipi_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl kit_sipi_gdtr - kit_sipi_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $BOOT_CS32, $kit_mb_ap32
	.balign 4
kit_sipi_gdtr:
	.word kit_boot_gdt_end - kit_boot_gdt - 1
	.long kit_boot_gdt
kit_sipi_end:

	.section .rodata
	.balign 16
kit_boot_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff        /* 0x08: 32-bit code (the AP's hop) */
	.quad 0x00af9a000000ffff        /* 0x10: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x18: data */
kit_boot_gdt_end:
kit_boot_gdtr:
	.word kit_boot_gdt_end - kit_boot_gdt - 1
	.long kit_boot_gdt

/* 0-4 GiB identity, 2 MiB pages, present + writable. */
	.section .data
	.balign 4096
kit_boot_pml4:
	.quad kit_boot_pdpt + 3
	.fill 511, 8, 0
kit_boot_pdpt:
	.quad kit_boot_pd + 3, kit_boot_pd + 0x1003, kit_boot_pd + 0x2003, kit_boot_pd + 0x3003
	.fill 508, 8, 0
kit_boot_pd:
	i = 0
	.rept 2048
	.quad (i << 21) | 0x83
	i = i + 1
	.endr

	.bss
	.balign 16
kit_mb_stack:
	.skip 4096
kit_mb_stack_top:

	.section .note.GNU-stack, "", @progbits
