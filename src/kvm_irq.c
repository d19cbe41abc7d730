#include "kvm_irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

#define IOAPIC_PINS 24
#define PIC_IRQS 16

/* The whole table each time: KVM_SET_GSI_ROUTING replaces it. The first
 * part is what KVM_CREATE_IRQCHIP installs (irq_comm.c default_routing):
 * GSI n -> IOAPIC pin n, and GSIs 0-15 also -> the PICs. Caller holds
 * k->lock. */
static int push_routes(struct kvm_irq *k)
{
	unsigned max = IOAPIC_PINS + PIC_IRQS + k->nmsi;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < PIC_IRQS)
			t->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	for (unsigned i = 0; i < k->nmsi; i++) {
		if (!k->msi[i].routed)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = KVM_IRQ_FIRST_MSI_GSI + i, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)k->msi[i].addr,
				   .address_hi = (uint32_t)(k->msi[i].addr >> 32),
				   .data = k->msi[i].data },
		};
	}
	t->nr = n;
	int r = ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	free(t);
	return r;
}

static int msi_alloc(struct msi_sink *s)
{
	struct kvm_irq *k = s->opaque;
	pthread_mutex_lock(&k->lock);
	int h = -ENOSPC;
	if (k->nmsi < KVM_IRQ_MAX_MSI) {
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0) {
			h = -errno;
		} else {
			struct kvm_irqfd irqfd = { .fd = (uint32_t)fd,
						   .gsi = KVM_IRQ_FIRST_MSI_GSI + k->nmsi };
			if (ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0) {
				h = -errno;
				close(fd);
			} else {
				h = (int)k->nmsi++;
				k->msi[h].fd = fd;
			}
		}
	}
	pthread_mutex_unlock(&k->lock);
	return h;
}

static int msi_set(struct msi_sink *s, int h, uint64_t addr, uint32_t data)
{
	struct kvm_irq *k = s->opaque;
	if (h < 0 || (unsigned)h >= k->nmsi)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	int r = 0;
	if (!k->msi[h].routed || k->msi[h].addr != addr || k->msi[h].data != data) {
		k->msi[h].routed = true;
		k->msi[h].addr = addr;
		k->msi[h].data = data;
		r = push_routes(k);
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static void msi_fire(struct msi_sink *s, int h)
{
	struct kvm_irq *k = s->opaque;
	if (h < 0 || (unsigned)h >= k->nmsi)
		return;
	__atomic_add_fetch(&k->fired, 1, __ATOMIC_RELAXED);
	if (eventfd_write(k->msi[h].fd, 1) < 0)
		log_warn("MSI %d: eventfd: %s", h, strerror(errno));
}

static int ioev_assign(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd, bool del)
{
	struct kvm_irq *k = s->opaque;
	struct kvm_ioeventfd io = {
		.addr = addr, .len = len, .fd = fd,
		.flags = del ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0,
	};
	return ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int ioev_add(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd)
{
	return ioev_assign(s, addr, len, fd, false);
}

static int ioev_del(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd)
{
	return ioev_assign(s, addr, len, fd, true);
}

int kvm_irq_init(struct kvm_irq *k, int vm_fd)
{
	memset(k, 0, sizeof(*k));
	k->vm_fd = vm_fd;
	pthread_mutex_init(&k->lock, NULL);
	k->sink = (struct msi_sink){ .alloc = msi_alloc, .set = msi_set, .fire = msi_fire, .opaque = k };
	k->ioev = (struct ioevent_sink){ .add = ioev_add, .del = ioev_del, .opaque = k };
	return 0;
}

void kvm_irq_destroy(struct kvm_irq *k)
{
	for (unsigned i = 0; i < k->nmsi; i++)
		close(k->msi[i].fd);
	k->nmsi = 0;
	pthread_mutex_destroy(&k->lock);
}
