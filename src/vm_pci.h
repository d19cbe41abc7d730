/* The VM's PCI side: the host bridge, the KVM MSI/doorbell plumbing, INTx
 * pins on IOAPIC GSIs 16-23, and the virtio devices the config asks for. */
#ifndef EMBER_VM_PCI_H
#define EMBER_VM_PCI_H

struct vm;

/* 0, or an exit code (EXIT_USAGE for a bad device option, with a message). */
int vm_pci_create(struct vm *vm);
void vm_pci_destroy(struct vm *vm);

#endif
