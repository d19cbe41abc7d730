/* The split-virtqueue walker and the virtio PCI transport without KVM:
 * guest memory from mem_create, a fake msi_sink and INTx line, virtio-rng
 * as the device behind the transport. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio/rng.h"
#include "devices/virtio/virtqueue.h"

#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define BUF   0x10000

static struct guest_mem mem;

static int setup(void **state)
{
	return mem_create(&mem, 1 << 20) ? -1 : 0;
}

static int teardown(void **state)
{
	mem_destroy(&mem);
	return 0;
}

static struct vring_desc *desc(unsigned i) { return mem_ptr(&mem, DESC + 16 * i, 16); }
static struct vring_avail *avail(void) { return mem_ptr(&mem, AVAIL, 4 + 2 * 16 + 2); }
static struct vring_used *used(void) { return mem_ptr(&mem, USED, 4 + 8 * 16 + 2); }

static void ring_init(struct virtq *vq, uint16_t size, bool indirect)
{
	memset(mem.host, 0, 1 << 20);
	memset(vq, 0, sizeof(*vq));
	vq->max_size = 256;
	vq->size = size;
	vq->desc_gpa = DESC;
	vq->avail_gpa = AVAIL;
	vq->used_gpa = USED;
	assert_int_equal(vq_start(vq, &mem, false, indirect), 0);
}

static void publish(uint16_t head)
{
	struct vring_avail *a = avail();
	a->ring[a->idx % 16] = head;
	a->idx++;
}

static void test_chain(void **state)
{
	struct virtq vq;
	struct iovec iov[8];
	struct vq_elem e;
	ring_init(&vq, 16, false);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 0);
	*desc(3) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 5 };
	*desc(5) = (struct vring_desc){ BUF + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7 };
	*desc(7) = (struct vring_desc){ BUF + 0x400, 1, VRING_DESC_F_WRITE, 0 };
	publish(3);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.head, 3);
	assert_int_equal(e.nout, 1);
	assert_int_equal(e.nin, 2);
	assert_int_equal(e.out_len, 16);
	assert_int_equal(e.in_len, 513);
	assert_ptr_equal(iov[1].iov_base, mem_ptr(&mem, BUF + 0x100, 512));
	vq_push(&vq, e.head, 513);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].id, 3);
	assert_int_equal(used()->ring[0].len, 513);
	assert_true(vq_should_notify(&vq));
	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 3, 0);
	assert_false(vq_should_notify(&vq));
}

static void test_bad_chains(void **state)
{
	struct virtq vq;
	struct iovec iov[4], big[32];
	struct vq_elem e;

	ring_init(&vq, 16, false);
	publish(16);                                      /* head out of range */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 1 };
	*desc(1) = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 0 };
	publish(0);                                       /* loop */
	assert_int_equal(vq_pop(&vq, &e, big, 32), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ 0xfffff000, 4096, 0, 0 };
	publish(0);                                       /* not RAM */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EFAULT);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ ~0ULL - 10, 100, 0, 0 };
	publish(0);                                       /* wraps */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EFAULT);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 1, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1 };
	*desc(1) = (struct vring_desc){ BUF, 1, 0, 0 };
	publish(0);                                       /* readable after writable */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	*desc(0) = (struct vring_desc){ BUF, 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* indirect not negotiated */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	avail()->idx = 17;                                /* more than the ring holds */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -EIO);

	ring_init(&vq, 16, false);
	for (unsigned i = 0; i < 5; i++)
		*desc(i) = (struct vring_desc){ BUF, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1) };
	*desc(5) = (struct vring_desc){ BUF, 1, 0, 0 };
	publish(0);                                       /* 6 buffers, room for 4 */
	assert_int_equal(vq_pop(&vq, &e, iov, 4), -E2BIG);
}

static void test_indirect(void **state)
{
	struct virtq vq;
	struct iovec iov[8];
	struct vq_elem e;
	ring_init(&vq, 16, true);
	struct vring_desc *t = mem_ptr(&mem, BUF + 0x1000, 48);
	t[0] = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ BUF + 0x100, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	t[2] = (struct vring_desc){ BUF + 0x400, 1, VRING_DESC_F_WRITE, 0 };
	*desc(0) = (struct vring_desc){ BUF + 0x1000, 48, VRING_DESC_F_INDIRECT, 0 };
	publish(0);
	assert_int_equal(vq_pop(&vq, &e, iov, 8), 1);
	assert_int_equal(e.nout + e.nin, 3);

	t[2] = (struct vring_desc){ BUF + 0x1000, 16, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* nested */
	assert_int_equal(vq_pop(&vq, &e, iov, 8), -EIO);

	ring_init(&vq, 16, true);
	t = mem_ptr(&mem, BUF + 0x1000, 48);
	t[0] = (struct vring_desc){ BUF, 16, VRING_DESC_F_NEXT, 0 };
	*desc(0) = (struct vring_desc){ BUF + 0x1000, 32, VRING_DESC_F_INDIRECT, 0 };
	publish(0);                                       /* loops inside the table */
	assert_int_equal(vq_pop(&vq, &e, iov, 8), -EIO);
}

static void test_start_checks(void **state)
{
	struct virtq vq = { .max_size = 256, .size = 100, .desc_gpa = DESC, .avail_gpa = AVAIL, .used_gpa = USED };
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* not a power of two */
	vq.size = 512;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* above max */
	vq.size = 16;
	vq.desc_gpa = DESC + 8;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* misaligned */
	vq.desc_gpa = (1 << 20) - 16;
	assert_int_equal(vq_start(&vq, &mem, false, false), -EINVAL);    /* runs past RAM */
}

/* ---- the transport, with virtio-rng behind it ------------------------------ */

struct fake_sink { struct msi_sink s; int next, fired[4]; };
static int f_alloc(struct msi_sink *s) { return ((struct fake_sink *)s)->next++; }
static int f_set(struct msi_sink *s, int h, uint64_t a, uint32_t d) { return 0; }
static void f_fire(struct msi_sink *s, int h) { ((struct fake_sink *)s)->fired[h]++; }
static int line_level;
static void line_set(struct irq_line *l, int level) { line_level = level; }

#define C(field) offsetof(struct virtio_pci_common_cfg, field)

static void test_transport_rng(void **state)
{
	struct fake_sink sink = { { f_alloc, f_set, f_fire, NULL }, 0, { 0 } };
	struct irq_line line = { .set_level = line_set, .gsi = 16 };
	struct virtio_env env = { .mem = &mem, .msi = &sink.s, .intx = &line };
	struct virtio_dev *vd;
	memset(mem.host, 0, 1 << 20);
	assert_int_equal(virtio_rng_create(&env, &vd), 0);
	assert_int_equal(virtio_bar_read(vd, C(num_queues), 2), 1);
	virtio_bar_write(vd, C(device_feature_select), 4, 1);
	assert_true(virtio_bar_read(vd, C(device_feature), 4) & (1u << (VIRTIO_F_VERSION_1 - 32)));
	virtio_bar_write(vd, C(device_status), 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	/* Without VERSION_1: FEATURES_OK does not stick. */
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	assert_false(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	virtio_bar_write(vd, C(guest_feature_select), 4, 1);
	virtio_bar_write(vd, C(guest_feature), 4, 1u << (VIRTIO_F_VERSION_1 - 32));
	virtio_bar_write(vd, C(device_status), 1, 0x0b);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Queue 0: 16 entries, no MSI-X vector (INTx + ISR). */
	virtio_bar_write(vd, C(queue_select), 2, 0);
	virtio_bar_write(vd, C(queue_size), 2, 16);
	virtio_bar_write(vd, C(queue_desc_lo), 4, DESC);
	virtio_bar_write(vd, C(queue_avail_lo), 4, AVAIL);
	virtio_bar_write(vd, C(queue_used_lo), 4, USED);
	virtio_bar_write(vd, C(queue_msix_vector), 2, 9);          /* out of range */
	assert_int_equal(virtio_bar_read(vd, C(queue_msix_vector), 2), VIRTIO_MSI_NO_VECTOR);
	virtio_bar_write(vd, C(queue_enable), 2, 1);
	assert_int_equal(virtio_bar_read(vd, C(queue_enable), 2), 1);
	virtio_bar_write(vd, C(device_status), 1, 0x0f);
	*desc(0) = (struct vring_desc){ BUF, 32, VRING_DESC_F_WRITE, 0 };
	publish(0);
	virtio_kick(vd, 0);
	assert_int_equal(used()->idx, 1);
	assert_int_equal(used()->ring[0].len, 32);
	assert_int_equal(line_level, 1);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), 1);   /* read clears, drops INTx */
	assert_int_equal(line_level, 0);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), 0);
	/* A broken chain: NEEDS_RESET, a config interrupt; reset clears it. */
	publish(7);
	*desc(7) = (struct vring_desc){ 0xfffff000, 32, VRING_DESC_F_WRITE, 0 };
	virtio_kick(vd, 0);
	assert_true(virtio_bar_read(vd, C(device_status), 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(virtio_bar_read(vd, VIRTIO_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	virtio_bar_write(vd, C(device_status), 1, 0);
	assert_int_equal(virtio_bar_read(vd, C(device_status), 1), 0);
	assert_int_equal(virtio_bar_read(vd, C(queue_enable), 2), 0);
	virtio_rng_destroy(vd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_bad_chains),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_start_checks),
		cmocka_unit_test(test_transport_rng),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
