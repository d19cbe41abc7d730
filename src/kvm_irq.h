/* The VM's side of struct msi_sink and struct ioevent_sink: MSI routes in
 * the KVM GSI routing table (KVM_SET_GSI_ROUTING, keeping KVM's default
 * IOAPIC/PIC routes for GSIs 0-23), each fed by an irqfd (KVM_IRQFD), and
 * doorbells as KVM_IOEVENTFD. */
#ifndef EMBER_KVM_IRQ_H
#define EMBER_KVM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "msi.h"

#define KVM_IRQ_MAX_MSI 256
#define KVM_IRQ_FIRST_MSI_GSI 24     /* after the IOAPIC's 24 pins */

struct kvm_irq {
	int vm_fd;
	pthread_mutex_t lock;
	unsigned nmsi;
	struct {
		int fd;                  /* irqfd */
		bool routed;
		uint64_t addr;
		uint32_t data;
	} msi[KVM_IRQ_MAX_MSI];
	struct msi_sink sink;
	struct ioevent_sink ioev;
	uint64_t fired;
};

int kvm_irq_init(struct kvm_irq *k, int vm_fd);
void kvm_irq_destroy(struct kvm_irq *k);

#endif
