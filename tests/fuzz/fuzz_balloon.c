/* libFuzzer target: the virtio-balloon parsers of guest input on chains
 * the walker accepted from an input-controlled ring. Byte 1 bits 2-3 pick
 * the queue: 0 inflate/deflate PFN arrays (balloon_pfn_runs), 1 free page
 * reports (balloon_report_range), 2 statistics (balloon_parse_stats);
 * otherwise as fuzz_common.h. Every run handed out must be 4 KiB aligned
 * pages of guest RAM. */
#include "devices/virtio/balloon.h"
#include "fuzz_common.h"

static void check_run(void *opaque, uint64_t off, uint64_t len)
{
	if (!len || (off | len) % BALLOON_PAGE || off > FUZZ_RAM || len > FUZZ_RAM - off)
		abort();
	volatile uint8_t *p = fuzz_mem.host + off;
	(void)p[0];
	(void)p[len - 1];
	(*(uint64_t *)opaque) += len / BALLOON_PAGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	struct iovec iov[BALLOON_IOV_MAX];
	struct vq_elem e;
	if (fuzz_queue(data, size, &vq))
		return 0;
	unsigned which = (data[1] >> 2) & 3;
	for (int round = 0; round < 300; round++) {
		if (vq_pop(&vq, &e, iov, BALLOON_IOV_MAX) <= 0)
			break;
		fuzz_touch(&e);
		if (which == 0) {
			uint64_t pages = 0, refused = 0;
			uint64_t taken = balloon_pfn_runs(&fuzz_mem, iov, e.nout, check_run, &pages, &refused);
			if (taken != pages || taken + refused > e.out_len / 4 + 1)
				abort();        /* runs and the count disagree */
		} else if (which == 1) {
			for (unsigned i = 0; i < e.nout + e.nin; i++) {
				uint64_t off, len, pages = 0;
				if (balloon_report_range(&fuzz_mem, &iov[i], &off, &len) == 0)
					check_run(&pages, off, len);
			}
		} else {
			uint64_t stat[BALLOON_STATS_MAX];
			uint32_t mask = 0;
			unsigned n = balloon_parse_stats(iov, e.nout, stat, &mask);
			if (n > e.out_len / 10 || (mask >> BALLOON_STATS_MAX))
				abort();
		}
		vq_push(&vq, e.head, 0);
	}
	return 0;
}
