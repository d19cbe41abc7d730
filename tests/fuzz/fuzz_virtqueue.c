/* libFuzzer target: the split-virtqueue walker (vq_pop/vq_push/notify) on
 * a ring the input controls. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	struct iovec iov[64];
	struct vq_elem e;
	if (fuzz_queue(data, size, &vq))
		return 0;
	for (int round = 0; round < 300; round++) {
		int r = vq_pop(&vq, &e, iov, 64);
		if (r <= 0)
			break;
		if (e.nout + e.nin > 64 || e.head >= vq.size)
			abort();
		fuzz_touch(&e);
		vq_push(&vq, e.head, (uint32_t)e.in_len);
		vq_should_notify(&vq);
		vq_rearm(&vq);
	}
	return 0;
}
