/* libFuzzer target: the state stream reader (src/migration/state.c), as a
 * snapshot file or a migration peer would feed it. Loaders of the real
 * section names read fields of every kind, as the real ones do, and the
 * stream is also compared with itself. Nothing in the input may crash the
 * reader or make it read outside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int loader(void *opaque, struct state_reader *r)
{
	/* Read whatever is there, by the type the next field claims to have. */
	for (int i = 0; i < 64 && state_peek_tag(r) >= 0; i++) {
		uint16_t tag = (uint16_t)state_peek_tag(r);
		uint64_t v64;
		uint32_t v32;
		uint16_t v16;
		uint8_t v8, buf[64];
		const void *p;
		size_t len;
		if (!state_get_u64(r, tag, &v64) || !state_get_u32(r, tag, &v32) ||
		    !state_get_u16(r, tag, &v16) || !state_get_u8(r, tag, &v8))
			continue;
		if (!state_get_blob_ref(r, tag, &p, &len)) {
			if (len)
				memcpy(buf, p, len < sizeof(buf) ? len : sizeof(buf));
			continue;
		}
		return state_get_blob(r, tag, buf, sizeof(buf));
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "vm", "ram", "irqchip", "pit", "cpu", "clock" };
	struct state_loader loaders[6];
	for (int i = 0; i < 6; i++)
		loaders[i] = (struct state_loader){ names[i], 2, loader, NULL };
	struct state_buf b = { .data = (uint8_t *)data, .len = size };
	char err[256];
	state_load(state_buf_source(&b), loaders, 6, err, sizeof(err));
	unsigned skipped;
	state_compare(&b, &b, &skipped, err, sizeof(err));
	return 0;
}
