/* libFuzzer target: virtio-blk request framing and checks (blk_parse,
 * blk_check) on chains the walker accepted from an input-controlled ring. */
#include "devices/virtio/blk.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	struct iovec iov[BLK_IOV_MAX];
	struct vq_elem e;
	if (fuzz_queue(data, size, &vq))
		return 0;
	for (int round = 0; round < 300; round++) {
		if (vq_pop(&vq, &e, iov, BLK_IOV_MAX) <= 0)
			break;
		struct blk_request r;
		if (blk_parse(&e, &r) == 0) {
			uint64_t len = 0;
			for (unsigned i = 0; i < r.ndata; i++) {
				len += r.data[i].iov_len;
				if (r.data[i].iov_len)
					((volatile uint8_t *)r.data[i].iov_base)[r.data[i].iov_len - 1];
			}
			if (len != r.data_len)
				abort();        /* framing and payload length disagree */
			*r.status = blk_check(&r, 1024, data[1] & 4);
		}
		vq_push(&vq, e.head, 1);
	}
	return 0;
}
