/* libFuzzer target: the multiboot loader with everything it takes from
 * outside fuzzed: the kernel file, the command line and the module (the
 * --initrd file). Input: u16 command-line length, the command line, u32
 * module length, the module, then the kernel. Nothing may crash or touch
 * memory outside guest RAM; what is accepted puts the boot information in
 * RAM below 4 MiB and enters inside a loaded segment. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s\n", #cond); abort(); } } while (0)

static struct guest_mem mem;

/* Take n bytes off the front of the input; NULL when it is shorter. */
static const uint8_t *take(const uint8_t **p, size_t *left, size_t n)
{
	if (*left < n)
		return NULL;
	const uint8_t *r = *p;
	*p += n;
	*left -= n;
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mem.host && mem_create(&mem, 16 * MiB))
		abort();
	const uint8_t *p = data;
	size_t left = size;
	const uint8_t *h = take(&p, &left, 2);
	if (!h)
		return 0;
	size_t clen = (size_t)(h[0] | h[1] << 8) % 4096;
	const uint8_t *c = take(&p, &left, clen);
	const uint8_t *m = take(&p, &left, 4);
	if (!c || !m)
		return 0;
	size_t mlen = (size_t)(m[0] | m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24) % (64 * 1024);
	const uint8_t *module = take(&p, &left, mlen);
	if (!module)
		return 0;
	char *cmdline = malloc(clen + 1);
	if (!cmdline)
		abort();
	memcpy(cmdline, c, clen);
	cmdline[clen] = '\0';

	struct mb_kernel k;
	char err[256];
	if (mb_parse(p, left, &k, err, sizeof(err)) == 0) {
		CHECK(k.nsegs <= MB_MAX_SEGMENTS);
		for (unsigned i = 0; i < k.nsegs; i++)
			CHECK(k.segs[i].filesz <= k.segs[i].memsz && k.segs[i].offset + k.segs[i].filesz <= left);
		struct mb_boot_args args = { .cmdline = cmdline, .module = mlen ? module : NULL,
					     .module_size = mlen, .module_name = "fuzz-module" };
		/* Placed on the layout alone, as before the VM exists; what is
		 * placed is then written into RAM of that layout. */
		struct guest_mem layout;
		struct mb_placement pl;
		uint32_t info;
		if (mem_layout(&layout, mem.size) == 0 && mb_place(&k, &layout, &args, &pl, err, sizeof(err)) == 0) {
			CHECK(mb_write(&k, p, &mem, &args, &pl, &info) == 0);
			CHECK(info < 4 * MiB && mem_is_ram(&mem, info, sizeof(struct mb_info)));
			CHECK(mem_is_ram(&mem, k.entry, 1));
		}
	}
	free(cmdline);
	return 0;
}
