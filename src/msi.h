/* What PCI devices need from the VM without knowing KVM (DESIGN rule 1):
 * MSI messages (a route per vector, fired from any thread) and doorbells
 * (an eventfd signalled when the guest writes a given MMIO address). The VM
 * implements them with KVM_SET_GSI_ROUTING + KVM_IRQFD and KVM_IOEVENTFD;
 * unit tests with fakes. */
#ifndef EMBER_MSI_H
#define EMBER_MSI_H

#include <stdint.h>

struct msi_sink {
	/* A new route, not yet deliverable; returns a handle >= 0 or -errno. */
	int (*alloc)(struct msi_sink *s);
	/* Point the route at an MSI address/data pair; 0 or -errno. */
	int (*set)(struct msi_sink *s, int handle, uint64_t addr, uint32_t data);
	/* Deliver the message once (thread-safe, never blocks). */
	void (*fire)(struct msi_sink *s, int handle);
	void *opaque;
};

struct ioevent_sink {
	/* Signal fd on guest writes of len bytes at MMIO addr; 0 or -errno. */
	int (*add)(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd);
	int (*del)(struct ioevent_sink *s, uint64_t addr, unsigned len, int fd);
	void *opaque;
};

#endif
