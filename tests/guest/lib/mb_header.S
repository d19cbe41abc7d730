/* The multiboot v1 header of a kernel's .flat build (linked into the .flat
 * only: the .elf boots through the "Ember" note, and a header there would
 * make Ember boot it as multiboot). Flags: bit 1, the memory map wanted.
 * The linker script puts .multiboot first in .text, within the file's
 * first 8 KiB. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000002

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.section .note.GNU-stack, "", @progbits
