#include "devices/virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

#define NET_QUEUE_SIZE 256
#define NET_IOV_MAX    64
#define RXQ 0
#define TXQ 1

struct vnet {
	struct virtio_dev vd;
	struct virtio_net_config cfg;
	int tap;
	bool rx_watching;            /* EPOLLIN on the tap is armed */
	char name[IFNAMSIZ];
};

/* Watch the tap only while the guest has receive buffers (else a frame
 * waiting in the tap would wake the loop for nothing, forever). */
static void rx_watch(struct vnet *n, bool on)
{
	if (n->rx_watching == on || !n->vd.loop)
		return;
	if (loop_modify(n->vd.loop, n->tap, on ? EPOLLIN : 0) == 0)
		n->rx_watching = on;
}

static void set_num_buffers(const struct vq_elem *e)
{
	/* The tap fills the first 10 bytes; num_buffers is ours: 1 (§5.1.6.3). */
	uint16_t one = 1;
	size_t off = offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers);
	for (unsigned i = e->nout, done = 0; i < e->nout + e->nin && done < 2; i++) {
		size_t len = e->iov[i].iov_len;
		if (off >= len) {
			off -= len;
			continue;
		}
		while (off < len && done < 2)
			((uint8_t *)e->iov[i].iov_base)[off++] = ((uint8_t *)&one)[done++];
		off = 0;
	}
}

static void rx(struct vnet *n)
{
	struct virtio_dev *vd = &n->vd;
	struct virtq *vq = &vd->vq[RXQ];
	struct iovec iov[NET_IOV_MAX];
	struct vq_elem e;
	bool pushed = false;
	if (!(vd->status & VIRTIO_CONFIG_S_DRIVER_OK) || vd->broken || !vq->enabled || vd->quiesced) {
		rx_watch(n, false);     /* resume (or a kick) turns it back on */
		return;
	}
	for (;;) {
		int r = vq_pop(vq, &e, iov, NET_IOV_MAX);
		if (r < 0) {
			virtio_set_broken(vd, vq_strerror(r));
			rx_watch(n, false);
			break;
		}
		if (r == 0) {
			if (!vq_rearm(vq)) {
				rx_watch(n, false);   /* the guest's rx kick turns it back on */
				break;
			}
			continue;
		}
		if (e.nout || e.in_len < sizeof(struct virtio_net_hdr_mrg_rxbuf)) {
			vq->last_avail--;
			virtio_set_broken(vd, "receive buffer without room for the virtio-net header");
			rx_watch(n, false);
			break;
		}
		ssize_t got = readv(n->tap, iov, (int)e.nin);
		if (got < 0) {
			vq->last_avail--;     /* give the chain back: nothing to receive */
			if (errno != EAGAIN && errno != EINTR)
				log_warn("%s: reading tap %s: %s", vd->name, n->name, strerror(errno));
			break;
		}
		set_num_buffers(&e);
		/* The frame and the header (num_buffers even past a short frame). */
		vq_mark_written(vq, iov, e.nin, (uint64_t)got > sizeof(struct virtio_net_hdr_mrg_rxbuf) ?
				(uint64_t)got : sizeof(struct virtio_net_hdr_mrg_rxbuf));
		vq_push(vq, e.head, (uint32_t)got);
		pushed = true;
	}
	if (pushed)
		virtio_queue_interrupt(vd, RXQ);
}

static void tx(struct vnet *n)
{
	struct virtio_dev *vd = &n->vd;
	struct virtq *vq = &vd->vq[TXQ];
	struct iovec iov[NET_IOV_MAX];
	struct vq_elem e;
	bool pushed = false;
	do {
		int r;
		while ((r = vq_pop(vq, &e, iov, NET_IOV_MAX)) > 0) {
			/* Header and frame as the driver laid them out: the tap
			 * takes the same 12-byte header. */
			if (e.nin || e.out_len < sizeof(struct virtio_net_hdr_mrg_rxbuf)) {
				virtio_set_broken(vd, "transmit chain without a virtio-net header");
				goto out;
			}
			if (writev(n->tap, iov, (int)e.nout) < 0 && errno != EAGAIN)
				log_debug("%s: tap %s: %s (frame dropped)", vd->name, n->name, strerror(errno));
			vq_push(vq, e.head, 0);
			pushed = true;
		}
		if (r < 0) {
			virtio_set_broken(vd, vq_strerror(r));
			goto out;
		}
	} while (vq_rearm(vq));
out:
	if (pushed)
		virtio_queue_interrupt(vd, TXQ);
}

static void net_notify(struct virtio_dev *vd, unsigned q)
{
	struct vnet *n = vd->backend;
	if (q == TXQ) {
		tx(n);
	} else {
		rx_watch(n, true);
		rx(n);
	}
}

static void on_tap(void *opaque, uint32_t events)
{
	struct vnet *n = opaque;
	pthread_mutex_lock(&n->vd.lock);
	rx(n);
	pthread_mutex_unlock(&n->vd.lock);
}

static void set_offload(struct vnet *n)
{
	unsigned off = 0;
	if (virtio_has_feature(&n->vd, VIRTIO_NET_F_GUEST_CSUM))
		off |= TUN_F_CSUM;
	if (ioctl(n->tap, TUNSETOFFLOAD, off) < 0)
		log_warn("%s: TUNSETOFFLOAD on %s: %s", n->vd.name, n->name, strerror(errno));
}

static void net_activate(struct virtio_dev *vd)
{
	set_offload(vd->backend);
	rx_watch(vd->backend, true);
}

/* The MAC the driver read on the source stays the guest's; the tap is
 * whatever this side was given (its name is only a record). */
enum { T_MAC = VIRTIO_STATE_BACKEND, T_TAP };

static int net_save(struct virtio_dev *vd, struct state_writer *w)
{
	struct vnet *n = vd->backend;
	state_put_blob(w, T_MAC, n->cfg.mac, sizeof(n->cfg.mac));
	state_put_blob(w, T_TAP, n->name, strnlen(n->name, sizeof(n->name)));
	return 0;
}

static int net_load(struct virtio_dev *vd, struct state_reader *r, const struct virtio_load *t)
{
	struct vnet *n = vd->backend;
	uint8_t mac[sizeof(n->cfg.mac)];
	const void *tap;
	size_t len;
	int e;
	if ((e = state_get_blob(r, T_MAC, mac, sizeof(mac))) || (e = state_get_blob_ref(r, T_TAP, &tap, &len)))
		return e;
	if (len >= IFNAMSIZ)
		return state_fail(r, "tap name of %zu bytes", len);
	memcpy(n->cfg.mac, mac, sizeof(mac));
	return 0;
}

static void net_reset(struct virtio_dev *vd)
{
	rx_watch(vd->backend, false);
}

static const struct virtio_ops net_ops = { .notify = net_notify, .activate = net_activate,
					   .reset = net_reset, .save = net_save, .load = net_load };

int tap_open(const char *name, char *ifname, char *err, size_t errlen)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "--net tap=%s: /dev/net/tun: %s", name, strerror(e));
		return -e;
	}
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int hdr = sizeof(struct virtio_net_hdr_mrg_rxbuf);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "--net tap=%s: %s%s", name, strerror(e),
			 e == EPERM || e == EBUSY ? " (does the tap exist, is it free, may you use it?)" : "");
		close(fd);
		return -e;
	}
	snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

int virtio_net_create(const struct virtio_env *env, const struct net_opts *o,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	char ifname[IFNAMSIZ];
	int fd;
	if (o->have_fd) {
		/* the process's tap: this VM's device starts with no offloads */
		snprintf(ifname, sizeof(ifname), "%s", o->ifname ? o->ifname : o->tap);
		if ((fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0)) < 0 || ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			snprintf(err, errlen, "--net tap=%s: %s", o->tap, strerror(e));
			return -e;
		}
	} else if ((fd = tap_open(o->tap, ifname, err, errlen)) < 0) {
		return fd;
	}
	int r = virtio_net_create_fd(env, fd, ifname, o->mac, out);
	if (r)
		snprintf(err, errlen, "--net tap=%s: %s", o->tap, strerror(-r));
	return r;
}

int virtio_net_create_fd(const struct virtio_env *env, int fd, const char *name, const uint8_t *mac,
			 struct virtio_dev **out)
{
	struct vnet *n = calloc(1, sizeof(*n));
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->tap = fd;
	snprintf(n->name, sizeof(n->name), "%s", name);
	if (mac) {
		memcpy(n->cfg.mac, mac, 6);
	} else {
		if (getrandom(n->cfg.mac, 6, 0) != 6)
			memset(n->cfg.mac, 0x5a, 6);
		n->cfg.mac[0] = (uint8_t)((n->cfg.mac[0] & 0xfe) | 0x02);   /* unicast, local */
	}
	n->cfg.status = VIRTIO_NET_S_LINK_UP;
	n->cfg.max_virtqueue_pairs = 1;
	uint64_t f = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
		     (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
		     (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) |
		     (1ULL << VIRTIO_NET_F_HOST_ECN);
	struct virtio_setup s = {
		.name = "virtio-net", .device_id = VIRTIO_ID_NET, .class_code = 0x020000,
		.nqueues = 2, .queue_max = NET_QUEUE_SIZE, .features = f,
		.config = &n->cfg, .config_len = sizeof(n->cfg), .ops = &net_ops, .backend = n,
		.env = *env,
	};
	int r = virtio_init(&n->vd, &s);
	if (!r && env->loop)
		r = loop_add(env->loop, n->tap, 0, on_tap, n);
	if (r) {
		virtio_net_destroy(&n->vd);
		return r;
	}
	*out = &n->vd;
	return 0;
}

void virtio_net_destroy(struct virtio_dev *vd)
{
	if (!vd)
		return;
	struct vnet *n = (struct vnet *)vd;
	if (n->tap >= 0) {
		if (vd->loop)
			loop_remove(vd->loop, n->tap);
		close(n->tap);
	}
	virtio_destroy(vd);
	free(n);
}
